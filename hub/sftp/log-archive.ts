// Where a cluster keeps the logs hosts upload (hub/cluster/logs-kv.ts). The
// embedded hub has none: every log stays in its jail's logs/, as it always
// did. With an archive, the jail still takes each upload into its own logs/
// (create-only, quota checked at every write, as before); once the upload is
// closed the log moves into the archive, where every hub's `bento-hub logs`
// finds it, and the host's quota counts the logs of every hub together.
export interface LogLimits {
  quotaBytes: number;
  maxFiles: number;
}

export interface LogArchive {
  /** HOST's logs in the archive, name -> size. Rejects (CLUSTER_UNAVAILABLE) when it cannot be reached. */
  list(host: string): Promise<Map<string, number>>;
  /** Drop these logs of HOST from the archive. */
  remove(host: string, names: string[]): Promise<void>;
  /**
   * Add the finished log FILE as HOST's NAME; resolves once durable. To keep
   * HOST within LIMITS cluster-wide, the archive drops HOST's oldest logs as
   * needed (by name, which starts with the job's time: NAME itself if it is
   * the oldest). Idempotent: storing a NAME already there keeps the stored one.
   */
  store(host: string, name: string, file: string, limits: LogLimits): Promise<void>;
  /** A log's bytes, or null if the archive has no such log. */
  read(host: string, name: string): Promise<Buffer | null>;
}
