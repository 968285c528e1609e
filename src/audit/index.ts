/** The audit trail: one signed, chained JSON line per run, on the controller and on the hosts it touched. */
export { buildRecord, gitState, recipients, type AuditDraft, type AuditRecord, type AuditHost, type AuditMode, type AuditResult, type GitState, type RunSummary } from './record.js';
export { sealRecord, headOfLine, parseRecordLine, verifyChain, type ChainCheck, type ChainHead } from './chain.js';
export { defaultAuditKeyFile, loadSigningKey, loadVerifyKey, publicKeyPem, AUDIT_KEY_ENV, type SigningKey, type VerifyKey } from './key.js';
export { appendLocal, defaultAuditFile, readAuditLines, type Appended } from './local.js';
export { remoteAppendScript, appendRemote, REMOTE_AUDIT_FILE, type RemoteAppend } from './remote.js';
export { crossCheck, type HostCopyCheck } from './cross-check.js';
export { canonicalJson } from './canonical.js';
export { recordRun, type RecordedRun } from './record-run.js';
