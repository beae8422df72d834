// The custom safeWeights/* requests (protocol.ts): a model file's report and disassembly, a workspace rescan,
// a conversion to safetensors with progress and cancellation.
import { ErrorCodes, ResponseError } from 'vscode-languageserver/node';
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import { convertToSafetensors, ConvertCancelled, ConvertRefused } from '../models/convert/convert';
import { disassembleModelFile } from '../models/scan';
import {
  ConvertRequest, DisassemblyRequest, ModelReportRequest, ScanWorkspaceRequest,
  type ConvertParams, type ConvertResult, type DisassemblyParams, type ModelReportParams,
} from '../protocol';
import { modelReport } from './modelFiles';
import { reloadConfig } from './settings';
import { uriToPath, type ServerState } from './state';
import { scanWorkspace } from './workspaceScan';

function requirePath(uri: string): string {
  const path = uriToPath(uri);
  if (!path) throw new ResponseError(ErrorCodes.InvalidParams, `not a file URI: ${uri}`);
  return path;
}

export function listenRequests(s: ServerState): void {
  const { connection } = s;
  connection.onRequest(ModelReportRequest, async (params: ModelReportParams) => modelReport(s, requirePath(params.uri), params.sha256));

  connection.onRequest(DisassemblyRequest, async (params: DisassemblyParams) => disassembleModelFile(requirePath(params.uri)));

  connection.onRequest(ScanWorkspaceRequest, async () => {
    await reloadConfig(s);
    return scanWorkspace(s);
  });

  connection.onRequest(ConvertRequest, async (params: ConvertParams, token, progress): Promise<ConvertResult> => {
    const input = requirePath(params.uri);
    const output = params.outUri ? requirePath(params.outUri) : input.replace(/\.[^./\\]*$/, '') + '.safetensors';
    const abort = new AbortController();
    const sub = token.onCancellationRequested(() => abort.abort());
    progress?.begin('Safe Weights: converting to safetensors', 0, basename(input), true);
    try {
      const r = await convertToSafetensors(input, output, {
        overwrite: params.overwrite, signal: abort.signal,
        onProgress: (done, total) => progress?.report(total ? Math.floor((done / total) * 100) : 0),
      });
      const dropped = r.dropped.length ? `; left out ${r.dropped.length} non-weight entries` : '';
      return { ok: true, outUri: pathToFileURL(r.output).href, tensors: r.tensors, removedAliases: r.removedAliases,
        message: `Wrote ${r.tensors} tensors to ${basename(r.output)}${dropped}.` };
    } catch (e) {
      if (e instanceof ConvertRefused) return { ok: false, message: e.message };
      if (e instanceof ConvertCancelled || abort.signal.aborted) return { ok: false, message: 'Conversion cancelled.' };
      throw e;
    } finally {
      sub.dispose();
      progress?.done();
    }
  });
}
