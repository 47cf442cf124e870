# hub.json "limits": every limit the hub puts on what peers may cost it
# (docs/security.md "Limits"), as data: the option declarations
# (options-limits.nix) are generated from it, and the unit test compares each
# default and range with the hub's own (hub/fleet/limits.ts and the files it
# names), so the module and the daemon cannot drift apart. Pure: no lib.
let
  KiB = 1024;
  MiB = 1024 * KiB;
  GiB = 1024 * MiB;
  l = default: min: max: description: { inherit default min max description; };
in
{
  # Unauthenticated connections (hub/server/admission-limits.ts).
  bannerTimeoutMs = l 5000 100 600000 "Time from accept to the client's SSH identification line (WebSocket: the TLS handshake and HTTP upgrade included); slower connections are closed.";
  handshakeTimeoutMs = l 10000 100 600000 "Time from accept to authenticated (waiting for a slot, key exchange and authentication together).";
  maxHandshakes = l 64 1 4096 "Key exchanges in progress at once (CPU on the hub's one thread).";
  handshakeSlotMs = l 2000 100 600000 "A handshake holds its slot at most this long; a slower one goes on without blocking the next.";
  maxQueued = l 1024 1 65536 "Connections with a banner waiting for a handshake slot; at this many, the largest source's oldest is dropped.";
  earlyDropQueued = l 512 1 65536 "From this many waiting, newcomers from sources above their fair share are dropped at random (at most maxQueued).";
  earlyDropPercent = l 30 0 100 "Drop probability (percent) at earlyDropQueued, rising linearly to 100 at maxQueued.";
  maxUnauthenticated = l 4096 1 65536 "Unauthenticated connections in all (banner, waiting, in handshake).";
  perSourceUnauthenticated = l 16 1 65536 "Unauthenticated connections per source (an IPv4 address, an IPv6 /64), plus one per host connected from it now or in the last hour (hosts behind one NAT).";
  penaltyFailures = l 10 1 1000000 "Failures (timeouts, garbage, refused authentication) per penaltyWindowMs that get a source refused for a while.";
  penaltyWindowMs = l 60000 1000 86400000 "Window in which penaltyFailures are counted.";
  penaltyMs = l 5000 0 86400000 "A penalised source's first refusal lasts this long; each further one doubles, up to penaltyMaxMs.";
  penaltyMaxMs = l 300000 0 86400000 "Longest refusal of a penalised source.";
  # What one connected agent may have in flight (hub/server/inbound-gate.ts).
  sessionQueuedMessages = l 64 2 1000000 "Messages from one agent read but not handled yet; more pause reading its control channel (SSH flow control) until half are handled.";
  sessionQueuedBytes = l (1 * MiB) (128 * KiB) (1 * GiB) "Bytes of those messages; more pause reading it the same way.";
  sessionOverrunBytes = l (8 * MiB) (6 * MiB) (1 * GiB) "Bytes a paused control channel may hold (a peer that respects the SSH window sends at most ~4 MiB); more cut the connection (INBOUND_OVERRUN).";
  sessionOutboundBytes = l (8 * MiB) (2 * MiB) (1 * GiB) "Bytes the hub has written to one agent's connection that the agent has not read yet; more cut the connection (OUTBOUND_OVERRUN). Writers that can wait (SFTP, service channels, control answers) wait for the connection to drain long before.";
  sessionBytesPerSecond = l (1 * MiB) (64 * KiB) (1 * GiB) "Bytes per second one agent may send on its control channel on average; faster pauses its reading.";
  sessionBurstBytes = l (4 * MiB) (64 * KiB) (1 * GiB) "Bytes one agent may send at once above that rate (a replayed outbox, a chatty build).";
  # What one authenticated connection, and one host's connections, may hold (hub/server/conn-limits.ts).
  channelsPerConnection = l 64 4 100000 "Channels a peer may have open on one connection (an agent uses about 35 at most: control, 8 SFTP, secrets, nix's connections to the cache tunnel); more are refused.";
  forwardsPerSession = l 16 1 1024 "Reverse forwards one connection may register (an agent asks one per allowForwardPorts entry); more are refused.";
  helloTimeoutMs = l 30000 1000 3600000 "Time from authentication to the agent's hello; a connection with neither a hello nor an open SFTP channel (pull mode) by then is cut.";
  connectionsPerHost = l 4 2 1024 "Authenticated connections of one host at once; a newer one cuts the oldest (first one that never said hello).";
  # Jobs recorded on a host's word (hub/jobs/adopt-limits.ts).
  adoptOpenPerHost = l 8 1 10000 "Unfinished jobs the hub records on a host's word (jobs it has no record of), per host; more are not recorded or acknowledged.";
  adoptPerWindow = l 512 1 1000000 "Jobs recorded on a host's word per adoptWindowMs, per host.";
  adoptWindowMs = l 3600000 1000 86400000 "Window of adoptPerWindow.";
  # Stored job output (hub/store/output-cap.ts).
  jobOutputBytes = l (16 * MiB) (64 * KiB) (1 * GiB) "Stored output per job: its head and its tail are kept, the middle is cut with a marker line.";
  jobOutputTailBytes = l (1 * MiB) (16 * KiB) (64 * MiB) "The part of jobOutputBytes kept from the end (held in memory while the job runs); at most half of jobOutputBytes.";
  hostOutputBytes = l (64 * MiB) (64 * KiB) (1024 * GiB) "Stored output of one host's finished jobs together (at least jobOutputBytes); the oldest jobs' output is dropped first.";
  # Readers that fall behind (hub/events/follower.ts).
  followerBufferBytes = l (4 * MiB) (64 * KiB) (256 * MiB) "Output held per follower (admin socket, dashboard stream) that does not keep up; more is skipped with a notice saying how much.";
}
