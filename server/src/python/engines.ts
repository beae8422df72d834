// The model-file engine and converter as the language server uses them (one seam, so the server code does not
// depend on their module layout).
import { scanModelFile, disassembleModelFile, isModelFileName } from '../models/scan';
import { convertToSafetensors, ConvertRefused, ConvertCancelled } from '../models/convert';
import type { ModelReport, ScanOptions } from '../models/types';

export interface ModelEngine {
  scanModelFile(path: string, opts?: ScanOptions): Promise<ModelReport>;
  disassembleModelFile(path: string): Promise<{ text: string; decompiled: string; truncated: boolean }>;
  isModelFileName(name: string): boolean;
}

const engine: ModelEngine = { scanModelFile, disassembleModelFile, isModelFileName };

export function modelEngine(): ModelEngine {
  return engine;
}

export { convertToSafetensors, ConvertRefused, ConvertCancelled };
