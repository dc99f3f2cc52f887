export {
  chooseEncoding,
  CONTENT_SECURITY_POLICY,
  dashboardRoutes,
  type DashboardOptions,
  defaultBuildDir,
  SECURITY_HEADERS,
} from './serve.js';
