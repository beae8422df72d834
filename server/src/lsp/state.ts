// The language server's state, in one object that every lsp/ module is handed (no module-level globals): the
// connection, the open documents and notebooks, the configuration, the clients' capabilities, the parse state
// of each open program and the findings published from disk scans.
import type { Connection, Diagnostic, NotebookDocuments, TextDocuments } from 'vscode-languageserver/node';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import { fileURLToPath } from 'node:url';
import { defaultConfig, type LoadedConfig } from '../config';
import type { SafeWeightsSettings } from '../protocol';
import type { CodeIssue } from '../python/analyze';
import type { PinIssue } from '../python/deps';
import type { NotebookProgram } from '../python/notebook';
import type { Program } from '../python/forest';
import type { Tree } from '../python/parser';
import type { LineIndex } from '../python/scanCode';
import type { ModelCache } from './modelCache';

export const SOURCE = 'safe-weights';

/**
 * The single change of an incremental didChange (typing), kept so the parse tree is told exactly what changed
 * instead of diffing the old and new texts (a full pass over big files on every keystroke).
 */
export interface KnownEdit {
  fromVersion: number; version: number; start: number; oldEnd: number;
  startPos: { line: number; character: number }; oldEndPos: { line: number; character: number }; text: string;
}

/** Parse state and last analysis of one program: a Python document or a notebook's code cells. */
export interface ProgramState {
  text: string;
  /** One tree, or for a big document a forest of segments (python/forest.ts). */
  tree?: Program;
  issues: CodeIssue[];
  /** setup.py: its install_requires pins (deps.ts). */
  pins?: PinIssue[];
  notebook?: { program: NotebookProgram; cellUris: string[]; indexes: Map<number, LineIndex> };
  lines?: { position(offset: number): { line: number; character: number } };
  /** Document version of `text`, the version `issues` were computed for, and the option they used. */
  version?: number;
  analyzed?: number;
  honorNosec?: boolean;
  /** Ranges whose syntax changed in the last re-parse (when the change was known exactly), the program before it
   *  (told of the change), and the trees that re-parse replaced, freed once the analysis has compared them. */
  changed?: { startIndex: number; endIndex: number }[];
  oldTree?: Program;
  retired?: Tree[];
}

/** What the client said it supports (initialize). */
export interface ClientCapabilities {
  pullConfig: boolean;
  watchDynamically: boolean;
  folderEvents: boolean;
  /** textDocument/diagnostic: the client pulls the diagnostics of open Python documents (pullDiagnostics.ts). */
  pullDiagnostics: boolean;
  /** workspace/diagnostic/refresh: the client pulls again when asked to. */
  refreshDiagnostics: boolean;
}

export interface ServerState {
  readonly connection: Connection;
  readonly documents: TextDocuments<TextDocument>;
  readonly notebooks: NotebookDocuments<TextDocument>;
  /** The last incremental change of each document (documentSync.ts). */
  readonly lastEdit: Map<string, KnownEdit>;
  client: ClientCapabilities;
  /** Workspace folders as paths. */
  roots: string[];
  /** pyproject.toml's [tool.safe-weights], the client's settings, and the two merged (what the rules use). */
  projectConfig: LoadedConfig;
  settings: Partial<SafeWeightsSettings> | undefined;
  config: LoadedConfig;
  /** Open programs by document or notebook URI. */
  readonly programs: Map<string, ProgramState>;
  /** Counts of the findings published from disk scans (files not open in the editor), by URI; model files also
   *  keep their verdict and summary (the status bar counts and lists them). */
  readonly diskFindings: Map<string, DiskFindings>;
  readonly models: ModelCache;
  /** Re-analyse an open document or notebook soon (set by diagnostics.ts). */
  schedule(uri: string): void;
  /** The analysis scheduled or running for a URI, settled when it ends (a diagnostic pull waits for it). */
  readonly analyzing: Map<string, Promise<void>>;
  /** Pulled documents (pullDiagnostics.ts): the last result of each, and the version the client last received. */
  readonly pulled: { results: Map<string, { resultId: string; version: number; items: Diagnostic[] }>; answered: Map<string, number>; nextId: number; refreshQueued: boolean };
}

export interface DiskFindings {
  dangerous: number;
  caution: number;
  model?: { verdict: string; summary: string };
}

export function initialState(parts: Pick<ServerState, 'connection' | 'documents' | 'notebooks' | 'lastEdit' | 'models'>): ServerState {
  return {
    ...parts,
    client: { pullConfig: false, watchDynamically: false, folderEvents: false, pullDiagnostics: false, refreshDiagnostics: false },
    roots: [], projectConfig: defaultConfig(), settings: undefined, config: defaultConfig(),
    programs: new Map(), diskFindings: new Map(), analyzing: new Map(),
    pulled: { results: new Map(), answered: new Map(), nextId: 1, refreshQueued: false },
    schedule: () => undefined,
  };
}

export function uriToPath(uri: string): string | undefined {
  try {
    return uri.startsWith('file:') ? fileURLToPath(uri) : undefined;
  } catch {
    return undefined;
  }
}
