// Typing text into a VNC guest as keystrokes, through the guest's keyboard layout.
//
// Why keysyms of the US key: RFB carries X11 keysyms, and QEMU (KubeVirt's VNC server) turns each keysym it
// receives into a scancode by looking it up in its keymap, which is the US one (KubeVirt starts QEMU without `-k`).
// The guest then reads that scancode through its own layout. So to make a German guest show "z", we must send the
// keysym of the US key that sits where "z" sits on a German keyboard: "y". A character on a shifted level of the
// guest's key is sent as Shift_L down, the US key's shifted keysym ("Y" for "Z"), Shift_L up; one on the AltGr level
// as ISO_Level3_Shift down (QEMU maps it to the right Alt key, which the guest's layout reads as AltGr), the US key's
// keysym, ISO_Level3_Shift up. A character that is a dead key on the guest's layout (German "^") is followed by a
// space, which makes the guest print it alone. Characters no key of the layout types (Chinese, emoji, accented
// letters that need a dead key) cannot be typed this way: they are listed before typing (only a guest agent could
// put them in the guest's clipboard).

/** X11 keysyms sent besides printable characters. */
export const KEYSYM = {
  SHIFT_L: 0xffe1,
  CONTROL_L: 0xffe3,
  ALT_L: 0xffe9,
  SUPER_L: 0xffeb,
  ISO_LEVEL3_SHIFT: 0xfe03,
  RETURN: 0xff0d,
  TAB: 0xff09,
  BACKSPACE: 0xff08,
  ESCAPE: 0xff1b,
  DELETE: 0xffff,
  PRINT: 0xff61,
  SYS_REQ: 0xff15,
  F1: 0xffbe,
  SPACE: 0x20,
} as const;

/** The keys of a 105-key (ISO) keyboard that type characters, by row, as a US keyboard labels them (unshifted,
 * shifted). The last one is the ISO key beside the left Shift, which a US keyboard lacks: QEMU's US keymap maps
 * "less" to it. */
const US_KEYS: readonly string[] = [
  ..."`~ 1! 2@ 3# 4$ 5% 6^ 7& 8* 9( 0) -_ =+".split(" "),
  ..."qQ wW eE rR tT yY uU iI oO pP [{ ]} \\|".split(" "),
  ..."aA sS dD fF gG hH jJ kK lL ;: '\"".split(" "),
  ..."zZ xX cC vV bB nN mM ,< .> /?".split(" "),
  "<>",
];

/** What each of those keys types on the guest's layout: a string of its levels (unshifted, Shift, AltGr,
 * Shift+AltGr; a level that types nothing is `N`), in the same order as `US_KEYS`; `dead`: characters that are
 * dead keys there. */
type Layout = { keys: readonly string[]; dead: string };

const N = "\u0000";
const US_LAYOUT: Layout = { keys: US_KEYS, dead: "" };

export const LAYOUTS: Record<string, Layout> = {
  "en-US": US_LAYOUT,
  "en-GB": {
    keys: [
      `\`¬${N}¦`, "1!", '2"', "3£", "4$€", "5%", "6^", "7&", "8*", "9(", "0)", "-_", "=+",
      "qQ", "wW", "eE", "rR", "tT", "yY", "uU", "iI", "oO", "pP", "[{", "]}", "#~",
      "aA", "sS", "dD", "fF", "gG", "hH", "jJ", "kK", "lL", ";:", "'@",
      "zZ", "xX", "cC", "vV", "bB", "nN", "mM", ",<", ".>", "/?",
      "\\|",
    ],
    dead: "",
  },
  "de-DE": {
    keys: [
      "^°", "1!¹", '2"²', "3§³", "4$", "5%", "6&", "7/{", "8([", "9)]", "0=}", "ß?\\", "´`",
      "qQ@", "wW", "eE€", "rR", "tT", "zZ", "uU", "iI", "oO", "pP", "üÜ", "+*~", "#'",
      "aA", "sS", "dD", "fF", "gG", "hH", "jJ", "kK", "lL", "öÖ", "äÄ",
      "yY", "xX", "cC", "vV", "bB", "nN", "mMµ", ",;", ".:", "-_",
      "<>|",
    ],
    dead: "^´`",
  },
  "fr-FR": {
    keys: [
      "²", "&1", "é2~", '"3#', "'4{", "(5[", "-6|", "è7`", "_8\\", "ç9^", "à0@", ")°]", "=+}",
      "aA", "zZ", "eE€", "rR", "tT", "yY", "uU", "iI", "oO", "pP", "^¨", "$£¤", "*µ",
      "qQ", "sS", "dD", "fF", "gG", "hH", "jJ", "kK", "lL", "mM", "ù%",
      "wW", "xX", "cC", "vV", "bB", "nN", ",?", ";.", ":/", "!§",
      "<>",
    ],
    dead: "~`^¨",
  },
  "es-ES": {
    keys: [
      "ºª\\", "1!|", '2"@', "3·#", "4$~", "5%", "6&¬", "7/", "8(", "9)", "0=", "'?", "¡¿",
      "qQ", "wW", "eE€", "rR", "tT", "yY", "uU", "iI", "oO", "pP", "`^[", "+*]", "çÇ}",
      "aA", "sS", "dD", "fF", "gG", "hH", "jJ", "kK", "lL", "ñÑ", "´¨{",
      "zZ", "xX", "cC", "vV", "bB", "nN", "mM", ",;", ".:", "-_",
      "<>",
    ],
    dead: "`^´¨",
  },
};

export const LAYOUT_NAMES = Object.keys(LAYOUTS);

export type KeyEvent = { keysym: number; down: boolean };

/** The keystrokes that type `text` on a guest with `layout`, and the characters that cannot be typed (once each, in
 * order of appearance; those are left out of the keystrokes). */
export function planTyping(text: string, layoutName: string): { events: KeyEvent[]; untypable: string[] } {
  const layout = LAYOUTS[layoutName] ?? US_LAYOUT;
  const where = positions(layout);
  const events: KeyEvent[] = [];
  const untypable: string[] = [];
  const press = (keysym: number) => events.push({ keysym, down: true }, { keysym, down: false });
  for (const char of text.replace(/\r\n?/g, "\n")) {
    if (char === "\n") press(KEYSYM.RETURN);
    else if (char === "\t") press(KEYSYM.TAB);
    else if (char === " ") press(KEYSYM.SPACE);
    else {
      const found = where.get(char);
      if (!found) {
        if (!untypable.includes(char)) untypable.push(char);
        continue;
      }
      const us = US_KEYS[found.key] ?? "";
      const shifted = found.level === 1 || found.level === 3;
      const altGr = found.level >= 2;
      const modifiers = [...(shifted ? [KEYSYM.SHIFT_L] : []), ...(altGr ? [KEYSYM.ISO_LEVEL3_SHIFT] : [])];
      for (const modifier of modifiers) events.push({ keysym: modifier, down: true });
      press(keysymOf(shifted ? (us[1] ?? "") : (us[0] ?? "")));
      for (const modifier of modifiers.reverse()) events.push({ keysym: modifier, down: false });
      if (layout.dead.includes(char)) press(KEYSYM.SPACE);
    }
  }
  return { events, untypable };
}

/** Each character of the layout → the key and level that types it (the lowest level wins). */
function positions(layout: Layout): Map<string, { key: number; level: number }> {
  const found = new Map<string, { key: number; level: number }>();
  layout.keys.forEach((levels, key) => {
    [...levels].forEach((char, level) => {
      if (char !== N && !found.has(char)) found.set(char, { key, level });
    });
  });
  return found;
}

/** Keysyms of ASCII (and Latin-1) characters are their code points. */
function keysymOf(char: string): number {
  return char.codePointAt(0) ?? 0;
}
