/** The audit trail: one hash-chained JSON line per run, on the controller and on changed hosts. */
export { buildRecord, gitState, type AuditDraft, type AuditRecord, type AuditHost, type AuditMode, type AuditResult, type GitState, type RunSummary } from './record.js';
export { sealRecord, hashOfLine, verifyChain, type ChainCheck } from './chain.js';
export { appendLocal, defaultAuditFile, readAuditLines } from './local.js';
export { remoteAppendScript, appendRemote, REMOTE_AUDIT_FILE, type RemoteAppend } from './remote.js';
export { canonicalJson, sha256Hex } from './canonical.js';
export { recordRun, type RecordedRun } from './record-run.js';
