// Key combinations the browser would keep for itself (Ctrl-Alt-Del, Ctrl-Alt-F1…F12, Print Screen…), sent to the
// guest from the toolbar's menu as key-downs in order, then key-ups in reverse.
import { KEYSYM } from "./keyboard";

/** `messageKey`: its words (and the values it takes). */
export type Combo = { id: string; messageKey: string; values?: Record<string, number>; keysyms: number[] };

const F = (n: number) => KEYSYM.F1 + n - 1;

export const COMBOS: Combo[] = [
  { id: "ctrl-alt-del", messageKey: "console.combos.ctrlAltDel", keysyms: [KEYSYM.CONTROL_L, KEYSYM.ALT_L, KEYSYM.DELETE] },
  ...Array.from({ length: 12 }, (_, index) => ({
    id: `ctrl-alt-f${index + 1}`,
    messageKey: "console.combos.ctrlAltF",
    values: { n: index + 1 },
    keysyms: [KEYSYM.CONTROL_L, KEYSYM.ALT_L, F(index + 1)],
  })),
  { id: "ctrl-alt-backspace", messageKey: "console.combos.ctrlAltBackspace", keysyms: [KEYSYM.CONTROL_L, KEYSYM.ALT_L, KEYSYM.BACKSPACE] },
  { id: "print", messageKey: "console.combos.print", keysyms: [KEYSYM.PRINT] },
  { id: "alt-print", messageKey: "console.combos.altPrint", keysyms: [KEYSYM.ALT_L, KEYSYM.PRINT] },
  { id: "alt-sysrq", messageKey: "console.combos.altSysRq", keysyms: [KEYSYM.ALT_L, KEYSYM.SYS_REQ] },
  { id: "alt-tab", messageKey: "console.combos.altTab", keysyms: [KEYSYM.ALT_L, KEYSYM.TAB] },
  { id: "alt-f4", messageKey: "console.combos.altF4", keysyms: [KEYSYM.ALT_L, F(4)] },
  { id: "super", messageKey: "console.combos.super", keysyms: [KEYSYM.SUPER_L] },
  { id: "escape", messageKey: "console.combos.escape", keysyms: [KEYSYM.ESCAPE] },
];

/** The key events of a combination: every key down in order, then up in reverse. */
export function comboEvents(combo: Combo): { keysym: number; down: boolean }[] {
  return [
    ...combo.keysyms.map((keysym) => ({ keysym, down: true })),
    ...[...combo.keysyms].reverse().map((keysym) => ({ keysym, down: false })),
  ];
}
