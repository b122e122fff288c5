// Where to connect to a VM from outside the cluster: each exposed port's `host:port` as a link, shared by the VM list's
// column and the detail page's access services card. A TCP port opens over HTTP(S) (most exposed ports serve a web
// page; the address is also plain to copy); a UDP port is shown as text, a browser cannot open it.
import type { AccessPort, AccessServiceInfo } from "@gen/novasphere/v1/wukong_pb";
import { Space, Tag, Typography } from "antd";
import { useTranslation } from "react-i18next";

/** Guest ports that usually speak TLS: their link opens with https. */
const TLS_PORTS = new Set([443, 8443, 6443, 9443]);
/** An address stays on one line: a narrow column must not break it at a digit. */
const NO_BREAK = { whiteSpace: "nowrap" } as const;

export function AccessAddress({ port }: { port: AccessPort }) {
  const { t } = useTranslation();
  if (!port.accessAddr) return <Tag>{t("access.pending")}</Tag>;
  if (port.protocol === "UDP") {
    return (
      <Typography.Text code copyable={{ text: port.accessAddr }} style={NO_BREAK}>
        {port.accessAddr}
      </Typography.Text>
    );
  }
  const scheme = TLS_PORTS.has(port.targetPort) ? "https" : "http";
  return (
    <Typography.Link
      href={`${scheme}://${port.accessAddr}/`}
      target="_blank"
      rel="noopener noreferrer"
      title={t("access.open", { address: port.accessAddr })}
      data-testid="access-address"
      style={NO_BREAK}
    >
      {port.accessAddr}
    </Typography.Link>
  );
}

/** All the addresses of a VM's access services; a dash when it has none. */
export function AccessAddresses({ services }: { services: AccessServiceInfo[] }) {
  const ports = services.flatMap((service) => service.ports.map((port) => ({ key: `${service.name}/${port.name}`, port })));
  if (!ports.length) return "—";
  return (
    <Space size={[8, 0]} wrap>
      {ports.map(({ key, port }) => (
        <AccessAddress key={key} port={port} />
      ))}
    </Space>
  );
}
