// How a model folder fails to open or run. The CLI, `adadiff doctor` and the language server's
// status item all show `message` as is, so it always names the file that is wrong and says what is
// wrong with it (and, where we know, what a correct one looks like).
import { FileError } from '../errors';

export class ModelError extends FileError {
  override readonly name = 'ModelError';
  readonly kind = 'model';
}
