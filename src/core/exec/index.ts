// The safe exec helper: the only module in the product that starts processes.
export { ExecError, type ExecErrorCode } from './errors';
export { HeadTailBuffer, CappedLogFile, type CapturedOutput, type CapturedLog } from './capture';
export { LineSplitter, type SplitLine } from './lines';
export { killCgroup, sweepDeadServerCgroups } from './cgroup';
export {
  describeContainment,
  STEP_MARKER_ENV,
  type ContainmentMechanism,
  type ContainmentReport,
} from './containment';
export { ProcessRegistry, defaultProcessRegistry, type TrackedProcess } from './registry';
export { resolveBinary } from './resolve';
export { bootId, findGroup, identify, isSameProcessAlive, signalTree, type ProcessIdentity } from './tree';
export {
  startProcess,
  runProcess,
  KillAtOnce,
  DEFAULT_KILL_GRACE_MS,
  DEFAULT_MAX_CAPTURE_BYTES,
  DEFAULT_MAX_LINE_BYTES,
  type ExecOptions,
  type ExecResult,
  type RunningProcess,
  type LogSpill,
  type TimeoutKind,
} from './process';
