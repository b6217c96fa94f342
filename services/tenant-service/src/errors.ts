/** An error the client caused or may act on: its code and message are returned as they are. */
export class AppError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const notFound = (what: string) => new AppError(404, "not_found", `${what} not found`);
export const forbidden = (message: string, code = "forbidden") => new AppError(403, code, message);
export const conflict = (message: string, code = "conflict") => new AppError(409, code, message);
export const badRequest = (message: string, code = "bad_request") => new AppError(400, code, message);
