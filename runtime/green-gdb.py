# green-gdb.py: the coroutines of a program built on `green`, in gdb.
#
#     gdb -x runtime/green-gdb.py PROGRAM PID-or-CORE      (or `source` it)
#
#     (gdb) green tasks        every coroutine of every runtime: id, runtime,
#                              worker, state, name, and its innermost frame
#                              outside the runtime and the standard library
#     (gdb) green bt ID        the backtrace of coroutine ID (or of the one
#                              coroutine with that name)
#
# It works on a live process and on a core dump alike, because it runs no
# code of the program: it reads the records the runtime keeps for it
# (runtime/src/debugger.rs has their layout and the argument) and unwinds a
# suspended coroutine's stack with the program's own unwind tables.
#
# How a suspended coroutine is unwound (x86-64): the task's coroutine cell
# holds the stack pointer its last switch saved, the lowest word of the cell
# strictly inside the coroutine's stack (the only other one is the initial
# stack pointer, above it). At that address the switch pushed, from low to
# high, the address it resumes at, `rbx` and `rbp`. So the coroutine's
# innermost frame has pc = [sp], rbx = [sp + 8], rbp = [sp + 16] and
# rsp = sp + 24, the values it had before the switch pushed them. A frame
# unwinder (below) makes those the caller of gdb's frame 0 while `green bt`
# walks; gdb's own unwinders take it from there, frame by frame, until the
# walk leaves the coroutine's stack.

import struct

import gdb
from gdb.unwinder import Unwinder, register_unwinder

MAGIC = int.from_bytes(b"GREENDBG", "little")
VERSION = 2
MAX_WORKERS = 256
STATES = {0: "runnable", 1: "running", 2: "parked", 3: "done"}
# Frames of these are the runtime's and the standard library's own, left
# out of `green tasks`'s "where" column (not of `green bt`).
OWN_PREFIXES = ("green::", "corosensei::", "core::", "std::", "alloc::", "<core::", "<std::", "<alloc::",
                "<green::", "stack_init_trampoline", "__rust")


def read(address, size):
    return gdb.selected_inferior().read_memory(address, size).tobytes()


def words(address, count):
    return struct.unpack("<%dQ" % count, read(address, 8 * count))


def root_address():
    language = gdb.parameter("language")
    gdb.execute("set language c", to_string=True)
    try:
        return int(gdb.parse_and_eval("(unsigned long)&GREEN_DEBUG_ROOT"))
    except gdb.error:
        raise gdb.GdbError("green: no GREEN_DEBUG_ROOT in this program: is it built on green?")
    finally:
        gdb.execute("set language %s" % language, to_string=True)


class Task:
    """One coroutine, as its record says."""

    def __init__(self, runtime, worker, tid, address, layout):
        (self.id, name, name_len, self.limit, self.base) = words(address, 5)
        coroutine_size, state_offset, coroutine_offset = layout
        state = address + state_offset
        self.coroutine = address + coroutine_offset
        self.runtime, self.worker, self.tid = runtime, worker, tid
        self.coroutine_size = coroutine_size
        self.name = read(name, name_len).decode("utf-8", "replace") if name and name_len else None
        self.state = STATES.get(read(state, 1)[0], "?")

    def label(self):
        return self.name if self.name is not None else "<unnamed>"

    def saved_registers(self):
        """The registers of the suspended coroutine's innermost frame, or
        None if it has no stack to read (not started, being torn down)."""
        if not self.limit:
            return None
        inside = [w for w in words(self.coroutine, self.coroutine_size // 8) if self.limit < w < self.base]
        if not inside:
            return None
        sp = min(inside)
        pc, rbx, rbp = words(sp, 3)
        return {"rip": pc, "rsp": sp + 24, "rbx": rbx, "rbp": rbp}


def tasks():
    root = root_address()
    magic, version, coroutine_size = words(root, 3)
    state_offset, coroutine_offset = struct.unpack("<2q", read(root + 24, 16))
    if magic != MAGIC:
        raise gdb.GdbError("green: GREEN_DEBUG_ROOT does not hold the runtime's records")
    if version != VERSION:
        raise gdb.GdbError("green: records of version %d; this script reads version %d" % (version, VERSION))
    found = []
    layout = (coroutine_size, state_offset, coroutine_offset)
    for worker_address in words(root + 40, MAX_WORKERS):
        if not worker_address:
            continue
        magic, runtime, worker, tid, table, table_len = words(worker_address, 6)
        if magic != MAGIC:
            continue
        for address in (words(table, table_len) if table and table_len else ()):
            if address:
                found.append(Task(runtime, worker, tid, address, layout))
    found.sort(key=lambda t: (t.runtime, t.worker, t.id))
    return found


def find(which):
    """The coroutine whose id is `which`, or else the one named `which`."""
    listed = tasks()
    try:
        task_id = int(which, 0)
    except ValueError:
        task_id = None
    for task in listed:
        if task.id == task_id:
            return task
    named = [task for task in listed if task.name == which]
    if len(named) > 1:
        raise gdb.GdbError("green: %d coroutines are named %s: give an id (green tasks lists them)"
                           % (len(named), which))
    if named:
        return named[0]
    raise gdb.GdbError("green: no coroutine %s (green tasks lists them)" % which)


class CoroutineUnwinder(Unwinder):
    """While `registers` is set, gdb's frame 0 is unwound to those
    registers: its caller, frame 1, is the suspended coroutine's innermost
    frame."""

    def __init__(self):
        super().__init__("green coroutine")
        self.registers = None

    def __call__(self, pending_frame):
        if self.registers is None or pending_frame.level() != 0:
            return None
        frame_id = FrameId(pending_frame.read_register("rsp"), pending_frame.read_register("rip"))
        info = pending_frame.create_unwind_info(frame_id)
        for name, value in self.registers.items():
            register_type = pending_frame.read_register(name).type
            info.add_saved_register(name, gdb.Value(value).cast(register_type))
        return info


class FrameId:
    """A frame id with a special address: gdb then does not compare frame
    0's stack address with frame 1's, which lies on another stack."""

    def __init__(self, sp, pc):
        # gdb 13 takes values, not numbers.
        self.sp, self.pc, self.special = sp, pc, gdb.Value(1).cast(pc.type)


UNWINDER = CoroutineUnwinder()
register_unwinder(None, UNWINDER, replace=True)


def without_generics(name):
    """`name` without its generic arguments: `a::f<T, U>::g<V>` is
    `a::f::g`."""
    out, depth = [], 0
    for char in name:
        if char == "<":
            depth += 1
        elif char == ">" and depth > 0:
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out)


def describe(frame):
    name = without_generics(frame.name()) if frame.name() else "0x%x" % frame.pc()
    sal = frame.find_sal()
    if sal.symtab is not None and sal.line:
        return name, "%s:%d" % (sal.symtab.filename, sal.line)
    return name, None


def coroutine_frames(task, limit=None):
    """(function, file:line) of the suspended `task`'s frames, innermost
    first."""
    registers = task.saved_registers()
    if registers is None:
        return None
    UNWINDER.registers = registers
    gdb.invalidate_cached_frames()
    frames = []
    try:
        frame = gdb.newest_frame().older()
        while frame is not None and (limit is None or len(frames) < limit):
            sp = int(frame.read_register("rsp"))
            if not (task.limit <= sp <= task.base):
                break
            frames.append(describe(frame))
            if frame.name() == "stack_init_trampoline":
                break
            frame = frame.older()
    except gdb.error as err:
        frames.append(("<unwinding stopped: %s>" % err, None))
    finally:
        UNWINDER.registers = None
        gdb.invalidate_cached_frames()
    return frames


def thread_of(task):
    for thread in gdb.selected_inferior().threads():
        if thread.ptid[1] == task.tid:
            return thread
    return None


class GreenCommand(gdb.Command):
    """Commands for programs built on green: green tasks, green bt ID."""

    def __init__(self):
        super().__init__("green", gdb.COMMAND_STACK, prefix=True)


class GreenTasks(gdb.Command):
    """List every coroutine: id, runtime, worker, state, name, and where it
    is (its innermost frame outside the runtime and the standard library)."""

    def __init__(self):
        super().__init__("green tasks", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        listed = tasks()
        print("%6s %7s %6s %-9s %-20s %s" % ("id", "runtime", "worker", "state", "name", "where"))
        for task in listed:
            where = ""
            if task.state == "running":
                where = "running on thread %d" % task.tid
            else:
                frames = coroutine_frames(task, limit=64)
                if frames is None:
                    where = "not started"
                else:
                    own = [f for f in frames if not f[0].startswith(OWN_PREFIXES)]
                    if own:
                        where = own[0][0] + (" at " + own[0][1] if own[0][1] else "")
            print("%6d %7d %6d %-9s %-20s %s" % (task.id, task.runtime, task.worker, task.state, task.label(),
                                                 where))
        print("%d coroutines" % len(listed))


class GreenBacktrace(gdb.Command):
    """Show the backtrace of a coroutine: green bt ID, or green bt NAME."""

    def __init__(self):
        super().__init__("green bt", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        which = argument.strip()
        if not which or len(which.split()) > 1:
            raise gdb.GdbError("usage: green bt ID (a coroutine's id or name, from green tasks)")
        task = find(which)
        print("coroutine %d '%s' (runtime %d, worker %d): %s" % (task.id, task.label(), task.runtime,
                                                                  task.worker, task.state))
        if task.state == "running":
            thread = thread_of(task)
            if thread is None:
                raise gdb.GdbError("green: coroutine %d runs on thread %d, which gdb does not see"
                                   % (task.id, task.tid))
            selected = gdb.selected_thread()
            thread.switch()
            try:
                gdb.execute("backtrace")
            finally:
                selected.switch()
            return
        frames = coroutine_frames(task)
        if frames is None:
            print("  no stack: not started, or being torn down")
            return
        for level, (name, where) in enumerate(frames):
            print("#%-3d %s" % (level, name) + ("\n     at %s" % where if where else ""))


GreenCommand()
GreenTasks()
GreenBacktrace()
