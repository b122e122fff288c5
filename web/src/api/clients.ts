// One client per service, all sharing the signed-in transport.
import { createClient } from "@connectrpc/connect";
import { AccessService } from "@gen/novasphere/v1/access_service_pb";
import { AdminService } from "@gen/novasphere/v1/admin_service_pb";
import { AuthService } from "@gen/novasphere/v1/auth_service_pb";
import { CatalogService } from "@gen/novasphere/v1/catalog_service_pb";
import { MetricsService } from "@gen/novasphere/v1/metrics_service_pb";
import { NotificationService } from "@gen/novasphere/v1/notification_service_pb";
import { SshKeyService } from "@gen/novasphere/v1/ssh_key_service_pb";
import { StatsService } from "@gen/novasphere/v1/stats_service_pb";
import { TaskService } from "@gen/novasphere/v1/task_service_pb";
import { WukongService } from "@gen/novasphere/v1/wukong_service_pb";
import { withAccessToken } from "./session";
import { transport } from "./transport";

const signedIn = transport([withAccessToken]);

export const accessClient = createClient(AccessService, signedIn);
export const adminClient = createClient(AdminService, signedIn);
export const authClient = createClient(AuthService, signedIn);
export const catalogClient = createClient(CatalogService, signedIn);
export const metricsClient = createClient(MetricsService, signedIn);
export const notificationClient = createClient(NotificationService, signedIn);
export const sshKeyClient = createClient(SshKeyService, signedIn);
export const statsClient = createClient(StatsService, signedIn);
export const taskClient = createClient(TaskService, signedIn);
export const wukongClient = createClient(WukongService, signedIn);
