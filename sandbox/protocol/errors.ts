/**
 * An error the sandbox answers with, in AWS's own terms: the error code the real service uses, its
 * message, and the HTTP status. Each protocol writes it in its own shape.
 */
class AwsError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, message: string, status = 400) {
    super(message);
    this.name = 'AwsError';
    this.code = code;
    this.status = status;
  }
}

export { AwsError };
