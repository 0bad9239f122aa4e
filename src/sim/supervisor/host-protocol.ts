// What the hosted driver (hosted-driver.ts) and a simulation host process
// (model/simulation-host-main.ts) say to each other over the host's IPC channel.

/** Driver → host. */
export type HostCommand =
  /** Run an instance from the env a process of its own would get (PORT, MESH_SIMULATE, <DEP>_URL…). */
  | {op: 'start'; instance: string; env: Record<string, string>; logFile: string}
  /** A graceful stop: in-flight requests finish, forced (as SIGKILL) once graceMs has passed. */
  | {op: 'stop'; instance: string; graceMs: number}
  /** SIGKILL: its sockets reset at once. */
  | {op: 'kill'; instance: string}
  /** SIGSTOP: it reads and answers nothing (connections are still accepted, as by a stopped process's kernel) until 'resume'. */
  | {op: 'pause'; instance: string}
  /** SIGCONT. */
  | {op: 'resume'; instance: string}

/** Host → driver. */
export type HostReport =
  /** The instance ended (stopped, killed, or could not start: code 1 cannot listen, 2 bad env). Sent once per start. */
  | {op: 'exit'; instance: string; code: number | null; signal: string | null}
