// Custom LSP messages between the Safe Weights client and server. Imported by both sides (no vscode import here).
import type { ModelReport } from './models/types';

/** Request: full engine report for a model file. Params: { uri, sha256?: boolean } → ModelReport. */
export const ModelReportRequest = 'safeWeights/modelReport';
export interface ModelReportParams { uri: string; sha256?: boolean }
export type ModelReportResult = ModelReport;

/** Request: human-readable pickle disassembly + decompiled view of a model file. */
export const DisassemblyRequest = 'safeWeights/disassembly';
export interface DisassemblyParams { uri: string }
export interface DisassemblyResult { text: string; decompiled: string; truncated: boolean }

/** Request: rescan the whole workspace now (returns when done). Counts are of model files; codeFiles counts the
 *  Python files, notebooks and dependency files scanned with them. */
export const ScanWorkspaceRequest = 'safeWeights/scanWorkspace';
export interface ScanWorkspaceResult { files: number; dangerous: number; caution: number; codeFiles: number }

/** A model file the workspace scan rates dangerous or caution (the status bar's quick pick lists them). */
export interface StatusFile { uri: string; verdict: 'dangerous' | 'caution'; summary: string }

/** Notification server → client, sent after every (re)scan: model files only (scanned, dangerous, caution), and
 *  the dangerous and caution ones, dangerous first (at most STATUS_FILES_MAX; the counts are exact). */
export const StatusNotification = 'safeWeights/status';
export interface StatusParams { dangerous: number; caution: number; scanned: number; scanning: boolean; files: StatusFile[] }
export const STATUS_FILES_MAX = 500;

/** Request: convert a pickle checkpoint to .safetensors (issue: conversion). Progress via $/progress (workDoneToken). */
export const ConvertRequest = 'safeWeights/convert';
export interface ConvertParams { uri: string; outUri?: string; overwrite?: boolean }
export interface ConvertResult { ok: boolean; outUri?: string; message: string; tensors?: number; removedAliases?: string[] }

/** Settings section read by the server (workspace/configuration, section "safeWeights"). */
export interface SafeWeightsSettings {
  enable: boolean;
  /** Per-rule override: "off" | "info" | "warning" | "error", keyed by rule id (e.g. SW101) or rule name. */
  rules: Record<string, 'off' | 'info' | 'warning' | 'error'>;
  exclude: string[];
  /** Patterns of the user's own callables that pickles may call ("mypkg.models.*"): vetted, rated caution. */
  allowGlobals: string[];
  workspaceScan: boolean;
  honorNosec: boolean;
}
