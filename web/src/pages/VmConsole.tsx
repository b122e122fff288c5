// A VM's VNC screen (noVNC) or serial console (xterm.js), kept connected (console/connection.ts), with its toolbar:
// key combinations, paste into the guest, scaling, full screen, its own window, disconnect; and its status.
// `?window=1` (the "own window" button opens that) shows the console alone, over the app's frame.
import { ConsoleProtocol } from "@gen/novasphere/v1/console_service_pb";
import { Alert, Button, Dropdown, Input, Segmented, Space, Tag, Typography } from "antd";
import { useEffect, useRef, useState, type CSSProperties } from "react";
import { useTranslation } from "react-i18next";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { problem } from "../api/errors";
import { InUseDialog } from "../components/console/InUseDialog";
import { PasteDialog } from "../components/console/PasteDialog";
import { StatusPanel } from "../components/console/StatusPanel";
import { closeMessage } from "../console/closeCodes";
import { COMBOS, comboEvents } from "../console/combos";
import { ConsoleConnection, type ConsoleState } from "../console/connection";
import { SerialScreen } from "../console/serial";
import { VncScreen, type Scaling } from "../console/vnc";

const OWN_WINDOW: CSSProperties = { position: "fixed", inset: 0, zIndex: 1000, background: "#fff", padding: 12, overflow: "auto" };
const SCREEN: CSSProperties = { background: "#000", minHeight: 420, height: "calc(100vh - 260px)", position: "relative" };

export function VmConsole() {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const { namespace = "", name = "", protocol: protocolName = "vnc" } = useParams();
  const [search] = useSearchParams();
  const ownWindow = search.get("window") === "1";
  const vnc = protocolName !== "serial";
  const protocol = vnc ? ConsoleProtocol.VNC : ConsoleProtocol.SERIAL;
  const page = useRef<HTMLDivElement>(null);
  const screenBox = useRef<HTMLDivElement>(null);
  const vncScreen = useRef<VncScreen | null>(null);
  const serialScreen = useRef<SerialScreen | null>(null);
  const connection = useRef<ConsoleConnection | null>(null);
  const [state, setState] = useState<ConsoleState>({ phase: "connecting" });
  const [scaling, setScaling] = useState<Scaling>("fit");
  const [pasting, setPasting] = useState(false);
  const [searchText, setSearchText] = useState("");
  const detailPath = `/vms/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;

  useEffect(() => {
    const box = screenBox.current;
    if (!box) return;
    let attach: (socket: WebSocket) => () => void;
    if (vnc) {
      const screen = new VncScreen(box);
      vncScreen.current = screen;
      attach = (socket) => screen.attach(socket);
    } else {
      const screen = new SerialScreen(box);
      serialScreen.current = screen;
      attach = (socket) => screen.attach(socket);
    }
    const opened = new ConsoleConnection({ namespace, name, protocol }, attach, setState);
    connection.current = opened;
    opened.connect();
    return () => {
      opened.dispose();
      serialScreen.current?.dispose();
      serialScreen.current = null;
      vncScreen.current = null;
      connection.current = null;
    };
  }, [namespace, name, protocol, vnc]);

  useEffect(() => vncScreen.current?.setScaling(scaling), [scaling]);

  const connected = state.phase === "connected";
  const title = vnc ? t("console.page.vncTitle", { name }) : t("console.page.serialTitle", { name });
  const toolbar = (
    <Space wrap data-testid="console-toolbar">
      {vnc && (
        <Dropdown
          disabled={!connected}
          menu={{
            items: COMBOS.map((combo) => ({ key: combo.id, label: t(combo.messageKey, combo.values ?? {}) })),
            onClick: ({ key }) => {
              const combo = COMBOS.find((c) => c.id === key);
              if (combo) void vncScreen.current?.send(comboEvents(combo));
            },
          }}
        >
          <Button data-testid="keys-menu">{t("console.toolbar.keys")}</Button>
        </Dropdown>
      )}
      <Button disabled={!connected} onClick={() => setPasting(true)} data-testid="paste">
        {t("console.toolbar.paste")}
      </Button>
      {vnc ? (
        <Segmented<Scaling>
          value={scaling}
          onChange={setScaling}
          options={[
            { value: "fit", label: t("console.toolbar.fit") },
            { value: "native", label: t("console.toolbar.native") },
          ]}
          data-testid="scaling"
        />
      ) : (
        <Space.Compact>
          <Input
            aria-label={t("console.toolbar.search")}
            placeholder={t("console.toolbar.search")}
            value={searchText}
            onChange={(event) => setSearchText(event.target.value)}
            onPressEnter={() => serialScreen.current?.find(searchText)}
            data-testid="search"
            allowClear
          />
          <Button onClick={() => serialScreen.current?.find(searchText, true)}>{t("console.toolbar.previous")}</Button>
          <Button onClick={() => serialScreen.current?.find(searchText)}>{t("console.toolbar.next")}</Button>
        </Space.Compact>
      )}
      <Button onClick={() => void page.current?.requestFullscreen().catch(() => undefined)}>
        {t("console.toolbar.fullScreen")}
      </Button>
      {!ownWindow && (
        <Button
          onClick={() => {
            // the console moves to its own window: this page lets go of it first (one connection per console)
            connection.current?.disconnect();
            window.open(`${window.location.pathname}?window=1`, `console-${namespace}-${name}-${protocolName}`, "popup,width=1024,height=768");
          }}
          data-testid="own-window"
        >
          {t("console.toolbar.ownWindow")}
        </Button>
      )}
      {connected || state.phase === "reconnecting" || state.phase === "connecting" ? (
        <Button danger onClick={() => connection.current?.disconnect()} data-testid="disconnect">
          {t("console.toolbar.disconnect")}
        </Button>
      ) : (
        <Button type="primary" onClick={() => connection.current?.connect()} data-testid="connect">
          {t("console.toolbar.connect")}
        </Button>
      )}
    </Space>
  );

  return (
    <div ref={page} style={ownWindow ? OWN_WINDOW : undefined} className="console-page" data-testid="console-page">
      <Space direction="vertical" style={{ width: "100%" }} size="middle">
        <Space wrap align="center">
          {!ownWindow && <Link to={detailPath}>{t("console.page.back")}</Link>}
          <Typography.Title level={4} style={{ margin: 0 }}>
            {title}
          </Typography.Title>
          <StateTag state={state} />
        </Space>
        {toolbar}
        <StateAlert state={state} />
        <div ref={screenBox} style={SCREEN} data-testid={vnc ? "vnc-screen" : "serial-screen"} />
        <StatusPanel
          namespace={namespace}
          name={name}
          protocol={protocol}
          revision={state.phase === "connected" ? state.session.sessionId : state.phase}
        />
      </Space>
      {state.phase === "in-use" && (
        <InUseDialog
          holder={state.holder}
          mayTakeOver={state.mayTakeOver}
          onTakeOver={() => connection.current?.connect(true)}
          onLeave={() => (ownWindow ? window.close() : navigate(detailPath))}
        />
      )}
      <PasteDialog
        open={pasting}
        keystrokes={vnc}
        onCancel={() => setPasting(false)}
        onPasteText={(text) => {
          setPasting(false);
          serialScreen.current?.paste(text);
        }}
        onPasteKeys={(events) => {
          setPasting(false);
          void vncScreen.current?.send(events, true);
        }}
      />
    </div>
  );
}

function StateTag({ state }: { state: ConsoleState }) {
  const { t } = useTranslation();
  switch (state.phase) {
    case "connected":
      return <Tag color="success" data-testid="console-state">{t("console.state.connected")}</Tag>;
    case "connecting":
      return <Tag color="processing" data-testid="console-state">{t("console.state.connecting")}</Tag>;
    case "reconnecting":
      return (
        <Tag color="warning" data-testid="console-state">
          {state.seconds > 0 ? t("console.state.reconnectingIn", { count: state.seconds }) : t("console.state.reconnecting")}
        </Tag>
      );
    case "vm-stopped":
      return <Tag data-testid="console-state">{t("console.state.vmStopped")}</Tag>;
    case "in-use":
      return <Tag color="orange" data-testid="console-state">{t("console.state.inUse")}</Tag>;
    case "closed":
      return <Tag data-testid="console-state">{t("console.state.closed")}</Tag>;
  }
}

function StateAlert({ state }: { state: ConsoleState }) {
  const { t } = useTranslation();
  if (state.phase === "reconnecting") {
    return (
      <Alert
        type="warning"
        showIcon
        data-testid="console-message"
        title={closeMessage(t, state.code, state.reason)}
        description={t("console.state.attempt", { attempt: state.attempt })}
      />
    );
  }
  if (state.phase === "vm-stopped") {
    return <Alert type="info" showIcon data-testid="console-message" title={t("console.closed.vmStopped")} description={t("console.state.waitingForVm")} />;
  }
  if (state.phase !== "closed") return null;
  let message: string;
  if (state.byUser) message = t("console.closed.byYou");
  else if (state.problem) message = refusalMessage(t, state.problem);
  else message = closeMessage(t, state.code ?? 0, state.reason ?? "");
  return (
    <Alert
      type={state.byUser ? "info" : "error"}
      showIcon
      data-testid="console-message"
      title={message}
      description={state.gaveUp ? t("console.state.gaveUp") : undefined}
    />
  );
}

function refusalMessage(t: ReturnType<typeof useTranslation>["t"], p: ReturnType<typeof problem>): string {
  switch (p.reason) {
    case "PERMISSION_DENIED":
      return t("console.refused.permission");
    case "RATE_LIMITED":
      return t("console.refused.rateLimited", { seconds: p.retryAfterSeconds ?? 60 });
    case "WUKONG_NOT_FOUND":
      return t("console.refused.notFound");
    default:
      return t("console.refused.other", { message: p.message });
  }
}
