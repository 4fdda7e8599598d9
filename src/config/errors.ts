// API errors with their HTTP status. Messages follow TF's wording where TF's clients
// parse them (404 look-ups, 409 delete conflicts).

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export class BadRequest extends ApiError {
  constructor(message: string, field?: string) {
    super(400, message, field);
  }
}

export class NotFound extends ApiError {
  constructor(message: string) {
    super(404, message);
  }
}

export class Conflict extends ApiError {
  constructor(message: string, field?: string, extra?: Record<string, unknown>) {
    super(409, message, field, extra);
  }
}
