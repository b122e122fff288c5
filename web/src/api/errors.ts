// What went wrong, in words a person can act on, from the google.rpc details the API attaches to every error.
import { ConnectError, Code } from "@connectrpc/connect";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
} from "@gen/google/rpc/error_details_pb";
import { i18next } from "../i18n";

export type Problem = {
  code: Code;
  reason: string;
  message: string;
  retryAfterSeconds: number | null;
  fields: Record<string, string>;
};

export function problem(error: unknown): Problem {
  const connect = ConnectError.from(error);
  const info = connect.findDetails(ErrorInfoSchema)[0];
  const retry = connect.findDetails(RetryInfoSchema)[0];
  const fields: Record<string, string> = {};
  for (const request of connect.findDetails(BadRequestSchema)) {
    for (const violation of request.fieldViolations) fields[violation.field] = violation.description;
  }
  const delay = retry?.retryDelay;
  return {
    code: connect.code,
    reason: info?.reason ?? "",
    message: connect.rawMessage,
    retryAfterSeconds: delay ? Number(delay.seconds) + Math.ceil(delay.nanos / 1e9) : null,
    fields,
  };
}

/** The sign-in page's words for a refused login. */
export function signInMessage(p: Problem): string {
  switch (p.reason) {
    case "LOGIN_FAILED":
      return i18next.t("errors.loginFailed");
    case "TOO_MANY_LOGIN_ATTEMPTS":
      return i18next.t("errors.tooManyLogins");
    case "RATE_LIMITED":
      return i18next.t("errors.rateLimited");
    case "TENANT_NOT_FOUND":
      return i18next.t("errors.tenantNotFound");
    default:
      if (p.code === Code.ResourceExhausted) return i18next.t("errors.rateLimited");
      if (p.code === Code.Unavailable) return i18next.t("errors.unavailable");
      return p.message || i18next.t("errors.signInFailed");
  }
}
