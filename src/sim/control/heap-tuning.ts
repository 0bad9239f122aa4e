// V8 settings for a process that hosts the data plane (the daemon, or the CLI running
// `mesh up` in the foreground). Set at run time, so both get them without a flag on
// the command line.
import v8 from 'node:v8'

/**
 * Turns off V8's allocation-site pretenuring. V8 watches, per object literal in the code,
 * how many of its objects survive a scavenge; past ~85% it allocates that literal's
 * objects in the old generation from then on, for good. A proxy's objects live for one
 * request, but at start-up (the first connections, compiling, health checks) the first
 * requests' objects outlive a scavenge, and V8 pretenured several request-scoped
 * literals. A pretenured object is only freed by a full GC, and until then keeps
 * everything young it points to alive: measured under load, every scavenge then kept
 * ~25% of what the data path had allocated (2.5–3 MB, against 0.1 MB for the bare proxy),
 * took 5–8 ms instead of ~1, and a full GC followed every few seconds. Without
 * pretenuring: 0.1–0.3 MB survive a scavenge and the daemon's off-main-thread GC time
 * fell from ~13 to ~4 µs per request (docs/benchmarks.md, "sixth pass").
 */
export function tuneHeapForProxying(): void {
  try {
    v8.setFlagsFromString('--no-allocation-site-pretenuring')
  } catch {
    // A Node that freezes V8's flags after start-up refuses: the mesh runs as before, only slower.
  }
}
