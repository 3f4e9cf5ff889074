// How a model folder fails to open or run. The CLI, `adadiff doctor` and the language server's
// status item all show `message` as is, so it always names the file that is wrong and says what is
// wrong with it (and, where we know, what a correct one looks like).
import { AdaDiffError } from '../errors';

export class ModelError extends AdaDiffError {
  override readonly name = 'ModelError';
  readonly kind = 'model';

  constructor(
    /** The file or folder at fault, as a path the user can open. */
    readonly file: string,
    /** What is wrong with it, as a sentence fragment that reads after "<file>: ". */
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${problem}`, options);
  }
}
