// The detail page's access services: the VM's NodePort / LoadBalancer services, their addresses, create and delete.
import type { Wukong } from "@gen/novasphere/v1/wukong_pb";

export function AccessServicesCard(_: { wukong: Wukong }) {
  return null; // filled in by the access services work (web console part 2)
}
