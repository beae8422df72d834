// Which file names the Model Inspector and the explorer menus treat as model files. No vscode import: unit-tested.

/** Opened in the Inspector by default: the extension alone says what the file is. */
export const DEFAULT_MODEL_EXTENSIONS = [
  '.pt', '.pth', '.ckpt', '.pkl', '.pickle', '.joblib', '.npy', '.npz', '.safetensors', '.gguf', '.keras', '.onnx',
] as const;

/** Offered in "Open With…" only: `.bin` is as often a tokenizer or firmware as a checkpoint. */
export const OPTIONAL_MODEL_EXTENSIONS = ['.bin', '.model', '.dat', '.h5', '.hdf5', '.mar'] as const;

/** Whole file names offered in "Open With…": a Hugging Face repository's config.json opens as the repository's report
 *  (remote code, chat templates, sharded checkpoints; server/src/models/hfRepo.ts). */
export const OPTIONAL_MODEL_NAMES = ['config.json'] as const;

/** Formats whose pickle can be rewritten as safetensors (the Convert button is offered for these). */
export const CONVERTIBLE_FORMATS: ReadonlySet<string> = new Set([
  'pytorch-zip', 'pytorch-legacy', 'pytorch-legacy-tar', 'pickle', 'joblib',
]);

export function isModelFileName(name: string): boolean {
  const lower = name.toLowerCase();
  const base = lower.slice(lower.lastIndexOf('/') + 1);
  return [...DEFAULT_MODEL_EXTENSIONS, ...OPTIONAL_MODEL_EXTENSIONS].some((ext) => lower.endsWith(ext)) ||
    (OPTIONAL_MODEL_NAMES as readonly string[]).includes(base);
}
