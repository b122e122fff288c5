// What went wrong, in words a person can act on, from the google.rpc details the API attaches to every error.
import { ConnectError, Code } from "@connectrpc/connect";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
} from "@gen/google/rpc/error_details_pb";

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
      return "Wrong username or password.";
    case "TOO_MANY_LOGIN_ATTEMPTS":
      return "Too many failed sign-ins: locked out for now.";
    case "RATE_LIMITED":
      return "Too many requests from here: wait a moment.";
    case "TENANT_NOT_FOUND":
      return "No such tenant for this user.";
    default:
      if (p.code === Code.ResourceExhausted) return "Too many requests from here: wait a moment.";
      if (p.code === Code.Unavailable) return "The service is unavailable right now; try again shortly.";
      return p.message || "Sign-in failed.";
  }
}
