// Messages between the Model Inspector webview (media/inspector.js) and the extension. JSON only.
import type { ModelReport } from '../../../server/src/models/types';
import type { DisassemblyResult, ConvertResult } from '../../../server/src/protocol';
import type { DangerCall } from './dangerCalls';

/** A place in the workspace's code that loads (or names) this model file. */
export interface LoadSite { label: string; detail: string }

/** Webview → extension. */
export type FromWebview =
  | { type: 'ready' }
  | { type: 'rescan' }
  | { type: 'sha256' }
  | { type: 'disassembly' }
  | { type: 'openDisassembly'; view: 'disassembly' | 'decompiled'; offset?: number; member?: string }
  | { type: 'openLoad'; index: number }
  | { type: 'convert' }
  | { type: 'rendered'; state: RenderedState };

/** What the webview shows after a render; used by the end-to-end tests through the extension's test API. */
export interface RenderedState {
  verdict: string;
  banner: string;
  weightsOnly: string;
  globals: number;
  tensorRows: number;
  metadataKeys: number;
  sha256?: string;
  /** Labels of the action buttons, in order. */
  actions: string[];
  /** The calls shown under "Loading this file would run" (dangerous files). */
  danger: string[];
  /** Tab ids shown. */
  tabs: string[];
}

/** Extension → webview. */
export type ToWebview =
  | { type: 'loading'; fileName: string }
  | { type: 'refresh' }
  | { type: 'report'; report: ModelReport; fileName: string; canConvert: boolean; convertRefusal?: string }
  | { type: 'danger'; calls: DangerCall[] }
  | { type: 'loads'; sites: LoadSite[]; searched: boolean }
  | { type: 'error'; message: string }
  | { type: 'sha256'; sha256: string }
  | { type: 'sha256Error'; message: string }
  | { type: 'disassembly'; result: DisassemblyResult }
  | { type: 'disassemblyError'; message: string }
  | { type: 'convertResult'; result: ConvertResult }
  | { type: 'convertUnavailable'; message: string };
