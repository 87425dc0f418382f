/**
 * An error the sandbox answers with, in AWS's own terms: the error code the real service uses, its
 * message, and the HTTP status. Each protocol writes it in its own shape. `fields` are further members of
 * the error structure in the service model (DynamoDB's ConditionalCheckFailedException carries `Item`);
 * the JSON protocols put them in the error body next to `__type` and `message`.
 */
class AwsError extends Error {
  readonly code: string;
  readonly status: number;
  readonly fields: Record<string, unknown> | undefined;

  constructor(code: string, message: string, status = 400, fields?: Record<string, unknown>) {
    super(message);
    this.name = 'AwsError';
    this.code = code;
    this.status = status;
    this.fields = fields;
  }
}

export { AwsError };
