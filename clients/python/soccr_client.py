#!/usr/bin/python3
"""A Python client of soccrd's gRPC API (soccr.v1.SocketRepairService).

Nothing here is generated ahead of time: `generate_stubs` runs Debian's protoc (protobuf-compiler,
with libprotobuf-dev for google/protobuf/any.proto) and its gRPC plugin (protobuf-compiler-grpc) on
the protos of this checkout, and the client needs only python3-grpcio and python3-protobuf. It is the
second-language check of the proto: checkpoints, restores and migrations through real daemons, and
every error's google.rpc.ErrorInfo read from the `grpc-status-details-bin` trailer.

As a program it prints one JSON document per command (see `main`); the test suite runs it
(test/python.test.ts).
"""

import argparse
import importlib
import json
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "protos"))
PROTOS = [
    "soccr/v1/soccr.proto",
    "soccr/v1/state.proto",
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
]
# Where Debian's libprotobuf-dev puts google/protobuf/*.proto (status.proto imports any.proto).
WELL_KNOWN_PROTOS = "/usr/include"
GRPC_PLUGIN = "/usr/bin/grpc_python_plugin"
# checkpoint files: magic, then a 16-bit big-endian format version, then length-delimited Frames
FILE_MAGIC = b"SOCCR\x01"
ERROR_DOMAIN = "soccrd.io"
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"


def generate_stubs(out_dir, proto_dir=PROTO_DIR):
    """Writes the Python modules of the protos into out_dir (protoc and its gRPC plugin)."""
    os.makedirs(out_dir, exist_ok=True)
    cmd = [
        "protoc",
        "-I", proto_dir,
        "-I", WELL_KNOWN_PROTOS,
        "--python_out=" + out_dir,
        "--grpc_python_out=" + out_dir,
        "--plugin=protoc-gen-grpc_python=" + GRPC_PLUGIN,
    ] + PROTOS
    subprocess.run(cmd, check=True)
    return out_dir


class Stubs:
    """The generated modules, imported from the directory generate_stubs wrote."""

    def __init__(self, out_dir):
        if out_dir not in sys.path:
            sys.path.insert(0, out_dir)
        self.pb = importlib.import_module("soccr.v1.soccr_pb2")
        self.grpc = importlib.import_module("soccr.v1.soccr_pb2_grpc")
        self.status = importlib.import_module("google.rpc.status_pb2")
        self.details = importlib.import_module("google.rpc.error_details_pb2")


def error_info(stubs, err):
    """The ErrorInfo of a failed call (a grpc.RpcError) as a dict, or None when it carries none."""
    for key, value in err.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = stubs.status.Status.FromString(value)
        for detail in status.details:
            if detail.type_url == ERROR_INFO_TYPE:
                info = stubs.details.ErrorInfo.FromString(detail.value)
                return {
                    "code": err.code().name,
                    "status_code": status.code,
                    "message": status.message,
                    "reason": info.reason,
                    "domain": info.domain,
                    "metadata": dict(info.metadata),
                }
    return None


class SoccrClient:
    """The calls of one daemon: `address` as grpc takes it (unix:///run/soccrd.sock, host:port)."""

    def __init__(self, stubs, address, timeout=60.0):
        self.s = stubs
        self.channel = __import__("grpc").insecure_channel(address)
        self.api = stubs.grpc.SocketRepairServiceStub(self.channel)
        self.timeout = timeout

    def close(self):
        self.channel.close()

    def version(self):
        return self.api.GetVersion(self.s.pb.GetVersionRequest(), timeout=self.timeout)

    def list_sockets(self, pid):
        """Every TCP socket of pid, page after page."""
        sockets, token = [], ""
        for _ in range(10000):
            r = self.api.ListSockets(self.s.pb.ListSocketsRequest(pid=pid, page_token=token), timeout=self.timeout)
            sockets.extend(r.sockets)
            token = r.next_page_token
            if not token:
                return sockets
        raise RuntimeError("ListSockets: too many pages")

    def checkpoint(self, pid, fds=(), all_fds=False, lease_ms=0):
        """The Checkpoint stream: an iterator of Frames (the session stays frozen until Resume/Release)."""
        req = self.s.pb.CheckpointRequest(pid=pid, fds=list(fds), all=all_fds, options=self.s.pb.CheckpointOptions(lease_ms=lease_ms))
        return self.api.Checkpoint(req, timeout=self.timeout)

    def restore(self, frames, netns="", deliver_unix_path="", go_live=False, transparent=True):
        """Rebuilds what `frames` (Checkpoint's frames, as they came) carry; returns the SessionInfo.
        transparent: the local addresses need not be in netns yet (they move there before Resume)."""
        options = self.s.pb.RestoreOptions(netns=netns, deliver_unix_path=deliver_unix_path, go_live=go_live, transparent=transparent)

        def stream():
            yield self.s.pb.Frame(restore_options=options)
            yield from frames

        return self.api.Restore(stream(), timeout=self.timeout).session

    def resume(self, session_id, deliver_unix_path=""):
        return self.api.Resume(self.s.pb.ResumeRequest(session_id=session_id, deliver_unix_path=deliver_unix_path), timeout=max(self.timeout, 15.0))

    def release(self, session_id):
        return self.api.Release(self.s.pb.ReleaseRequest(session_id=session_id), timeout=self.timeout)

    def abort(self, session_id):
        return self.api.Abort(self.s.pb.AbortRequest(session_id=session_id), timeout=self.timeout)

    def get_session(self, session_id):
        """The session with all its connections (GetSession pages through them)."""
        first, conns, token = None, [], ""
        for _ in range(10000):
            page = self.api.GetSession(self.s.pb.GetSessionRequest(session_id=session_id, connections_page_token=token), timeout=self.timeout)
            first = first or page
            conns.extend(page.connections)
            token = page.next_connections_page_token
            if not token:
                break
        info = self.s.pb.SessionInfo()
        info.CopyFrom(first)
        del info.connections[:]
        info.connections.extend(conns)
        return info


def write_checkpoint_file(path, frames, fmt):
    """A checkpoint file: magic, format, then each frame (batches unpacked) length-delimited."""
    count = 0
    with open(path, "wb") as f:
        f.write(FILE_MAGIC + struct.pack(">H", fmt))
        for frame in frames:
            for one in frame.batch.frames if frame.WhichOneof("kind") == "batch" else [frame]:
                data = one.SerializeToString()
                f.write(_varint(len(data)) + data)
                count += 1
    return count


def read_checkpoint_file(stubs, path):
    """The frames of a checkpoint file, one by one."""
    with open(path, "rb") as f:
        data = f.read()
    if data[: len(FILE_MAGIC)] != FILE_MAGIC:
        raise ValueError(path + ": not a checkpoint file")
    pos = len(FILE_MAGIC) + 2
    while pos < len(data):
        n, pos = _read_varint(data, pos)
        yield stubs.pb.Frame.FromString(data[pos : pos + n])
        pos += n


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data, pos):
    n = shift = 0
    for _ in range(10):
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos
    raise ValueError("varint too long")


def migrate(src, dst, pid, netns, deliver_unix_path, before_resume=None, all_fds=True, fds=()):
    """Live migration through two daemons: Checkpoint on src relayed frame by frame into a held Restore
    on dst, the before_resume shell command (moving the service address), then Resume dst (the receiver
    takes the live sockets) and Release src. On a failure before dst went live, both sessions are
    undone (dst aborted, src resumed): the connections go on at src."""
    frames = src.checkpoint(pid, fds=fds, all_fds=all_fds)
    source_id = None

    def relayed():
        nonlocal source_id
        for frame in frames:
            kind = frame.WhichOneof("kind")
            if kind == "session":
                source_id = frame.session.session_id
            elif kind == "batch":
                for f in frame.batch.frames:
                    if f.WhichOneof("kind") == "session":
                        source_id = f.session.session_id
            yield frame

    try:
        held = dst.restore(relayed(), netns=netns)
    except Exception:
        if source_id:
            src.resume(source_id)
        raise
    try:
        if before_resume:
            subprocess.run(["sh", "-c", before_resume], check=True, timeout=60)
        live = dst.resume(held.session_id, deliver_unix_path)
    except Exception:
        dst.abort(held.session_id)
        src.resume(source_id)
        raise
    released = src.release(source_id)
    return {"source": source_id, "destination": live.session_id, "connections": live.connection_count, "source_state": released.state, "destination_state": live.state}


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stubs", required=True, help="directory for the generated modules (made if missing)")
    sub = p.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("version")
    v.add_argument("--daemon", required=True)
    c = sub.add_parser("checkpoint", help="checkpoint every connection of a process into a file")
    c.add_argument("--daemon", required=True)
    c.add_argument("--pid", type=int, required=True)
    c.add_argument("--out", required=True)
    r = sub.add_parser("restore", help="restore a file held, then abort it (nothing goes live)")
    r.add_argument("--daemon", required=True)
    r.add_argument("--in", dest="inp", required=True)
    r.add_argument("--netns", default="")
    s = sub.add_parser("resume")
    s.add_argument("--daemon", required=True)
    s.add_argument("--session", required=True)
    m = sub.add_parser("migrate")
    m.add_argument("--from", dest="src", required=True)
    m.add_argument("--to", dest="dst", required=True)
    m.add_argument("--pid", type=int, required=True)
    m.add_argument("--netns", default="")
    m.add_argument("--deliver", required=True)
    m.add_argument("--before-resume", default=None, help="shell command run between restore and resume")
    e = sub.add_parser("errors", help="calls that fail, and the ErrorInfo each carries")
    e.add_argument("--daemon", required=True)
    e.add_argument("--gone-pid", type=int, required=True)
    e.add_argument("--pid", type=int, required=True)
    a = p.parse_args(argv)

    stubs = Stubs(generate_stubs(a.stubs))
    out = {}
    if a.cmd == "version":
        d = SoccrClient(stubs, a.daemon)
        ver = d.version()
        out = {"version": ver.version, "stream_format": ver.stream_format, "kernel_release": ver.kernel_release}
    elif a.cmd == "checkpoint":
        d = SoccrClient(stubs, a.daemon)
        fmt = d.version().stream_format
        frames = list(d.checkpoint(a.pid, all_fds=True))
        header = next(f.session for f in _unpacked(frames) if f.WhichOneof("kind") == "session")
        out = {"session": header.session_id, "connections": header.connection_count, "frames": write_checkpoint_file(a.out, frames, fmt)}
        out["state"] = d.get_session(header.session_id).state
    elif a.cmd == "restore":
        d = SoccrClient(stubs, a.daemon)
        held = d.restore(read_checkpoint_file(stubs, a.inp), netns=a.netns)
        got = d.get_session(held.session_id)
        aborted = d.abort(held.session_id)
        out = {"session": held.session_id, "held_state": held.state, "connections": len(got.connections), "aborted_state": aborted.state}
    elif a.cmd == "resume":
        out = {"state": SoccrClient(stubs, a.daemon).resume(a.session).state}
    elif a.cmd == "migrate":
        out = migrate(SoccrClient(stubs, a.src), SoccrClient(stubs, a.dst), a.pid, a.netns, a.deliver, a.before_resume)
    elif a.cmd == "errors":
        d = SoccrClient(stubs, a.daemon)
        grpc = __import__("grpc")
        calls = {
            "get_unknown_session": lambda: d.get_session("no-such-session"),
            "checkpoint_gone_pid": lambda: list(d.checkpoint(a.gone_pid, all_fds=True)),
            "checkpoint_no_fd": lambda: list(d.checkpoint(a.pid, fds=[1000])),
            "checkpoint_nothing": lambda: list(d.checkpoint(a.pid)),
            "negative_page_size": lambda: d.api.ListSessions(stubs.pb.ListSessionsRequest(page_size=-1), timeout=d.timeout),
        }
        for name, call in calls.items():
            try:
                call()
                out[name] = None
            except grpc.RpcError as err:
                out[name] = error_info(stubs, err) or {"code": err.code().name}
    print(json.dumps(out, sort_keys=True))
    return 0


def _unpacked(frames):
    for f in frames:
        if f.WhichOneof("kind") == "batch":
            yield from f.batch.frames
        else:
            yield f


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
