//! Load-time folding of the frozen configuration into the program.
//!
//! The program reads its rule-set shape (`used_fields`, `index_fields`,
//! `has_count_rules`, ...) from `.rodata`, which libbpf freezes before the
//! load. The verifier knows those values and drops the branches they rule
//! out, but keeps the instructions that compute the tests: the map address,
//! the load and the mask, at every test (clang must reload `const volatile`
//! each time). On this project's bench packet that was a third of the
//! instructions a packet runs through.
//!
//! This pass runs on the relocated instructions, before the kernel sees
//! them. It propagates constants through registers (values read from
//! `.rodata` included), turns a load of a known value into a move of it,
//! folds arithmetic on known values, gives compares and ALU steps an
//! immediate operand where the register's value is known, and turns
//! instructions whose result nothing reads into `ja +0`. The verifier
//! removes those no-ops and the code its own constant tracking proves dead,
//! so the instruction count, jump offsets and BTF line and function info
//! stay exactly as libbpf built them.
//!
//! It is conservative: the stack and memory other than `.rodata` are not
//! tracked; a decided jump whose folding would leave code unreachable is
//! kept for the verifier (which folds it with the same value, and drops
//! that code); liveness counts every way of every jump; and an instruction
//! it does not model makes its destination unknown.

/// One BPF instruction, laid out as the kernel's `struct bpf_insn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register (low nibble) and source register (high nibble).
    pub regs: u8,
    /// Signed offset.
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl Insn {
    fn dst(self) -> usize {
        usize::from(if cfg!(target_endian = "little") {
            self.regs & 0x0f
        } else {
            self.regs >> 4
        })
    }

    fn src(self) -> usize {
        usize::from(if cfg!(target_endian = "little") {
            self.regs >> 4
        } else {
            self.regs & 0x0f
        })
    }
}

/// The register byte of `struct bpf_insn` (its bitfields follow the host's
/// byte order).
const fn regs(dst: u8, src: u8) -> u8 {
    if cfg!(target_endian = "little") {
        dst | src << 4
    } else {
        dst << 4 | src
    }
}

// Instruction classes and fields (include/uapi/linux/bpf.h).
const CLASS_LD: u8 = 0x00;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
const CLASS_ALU: u8 = 0x04;
const CLASS_JMP: u8 = 0x05;
const CLASS_JMP32: u8 = 0x06;
const CLASS_ALU64: u8 = 0x07;
const MODE_IMM: u8 = 0x00;
const MODE_MEM: u8 = 0x60;
const SRC_X: u8 = 0x08;
const OP_ADD: u8 = 0x00;
const OP_SUB: u8 = 0x10;
const OP_MUL: u8 = 0x20;
const OP_DIV: u8 = 0x30;
const OP_OR: u8 = 0x40;
const OP_AND: u8 = 0x50;
const OP_LSH: u8 = 0x60;
const OP_RSH: u8 = 0x70;
const OP_MOD: u8 = 0x90;
const OP_XOR: u8 = 0xa0;
const OP_MOV: u8 = 0xb0;
const OP_ARSH: u8 = 0xc0;
/// Byte swaps: their 0x08 bit is the byte order, not a register operand.
const OP_END: u8 = 0xd0;
const JA: u8 = 0x00;
const CALL: u8 = 0x80;
const EXIT: u8 = 0x90;
/// `ld_imm64` (BPF_LD | BPF_IMM | BPF_DW).
const LD_IMM64: u8 = CLASS_LD | MODE_IMM | 0x18;
const PSEUDO_MAP_VALUE: u8 = 2;
const PSEUDO_CALL: u8 = 1;
const PSEUDO_FUNC: u8 = 4;
const FP: usize = 10;

/// The no-op the verifier removes (`ja +0`).
const NOP: Insn = Insn {
    code: CLASS_JMP | JA,
    regs: 0,
    off: 0,
    imm: 0,
};

/// What the pass knows of a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    /// Nothing (also: not yet reached).
    Unknown,
    /// This 64-bit value.
    Const(u64),
    /// A pointer this many bytes into the frozen `.rodata` value.
    Ro(i64),
}

impl Val {
    /// The value, if it is a constant that meets `ok`; else unknown.
    fn clone_if(self, ok: impl Fn(u64) -> bool) -> Val {
        match self {
            Val::Const(v) if ok(v) => self,
            _ => Val::Unknown,
        }
    }
}

type Regs = [Val; 11];

const NOTHING: Regs = [Val::Unknown; 11];

/// The frozen map whose contents are folded: its fd as libbpf relocated
/// it into `ld_imm64`, and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Frozen<'a> {
    /// The map's fd (the `imm` of its `ld_imm64` instructions).
    pub fd: i32,
    /// The map's value.
    pub data: &'a [u8],
}

/// What the pass changed, for the load's report and for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Folded {
    /// Loads from the frozen map replaced by a move of their value.
    pub loads: usize,
    /// Arithmetic on known values replaced by a move of the result.
    pub alu: usize,
    /// Register operands replaced by an immediate (ALU and jumps).
    pub operands: usize,
    /// Conditional jumps decided by known values, now `ja` or `ja +0`.
    pub jumps: usize,
    /// Instructions whose result nothing read, now `ja +0`.
    pub removed: usize,
}

impl Folded {
    fn any(self) -> bool {
        self.loads + self.alu + self.operands + self.jumps + self.removed > 0
    }

    fn add(&mut self, o: Folded) {
        self.loads += o.loads;
        self.alu += o.alu;
        self.operands += o.operands;
        self.jumps += o.jumps;
        self.removed += o.removed;
    }
}

fn class(i: Insn) -> u8 {
    i.code & 0x07
}

fn is_jmp(i: Insn) -> bool {
    matches!(class(i), CLASS_JMP | CLASS_JMP32)
}

fn is_wide(i: Insn) -> bool {
    i.code == LD_IMM64
}

/// Whether `i` reads its source register (not a byte swap's order bit).
fn x_src(i: Insn) -> bool {
    i.code & SRC_X != 0 && !(matches!(class(i), CLASS_ALU | CLASS_ALU64) && i.code & 0xf0 == OP_END)
}

/// Where control goes after instruction `pc` (none past the end); `known`:
/// a conditional jump's outcome, when decided.
fn successors(insns: &[Insn], pc: usize, known: Option<bool>) -> impl Iterator<Item = usize> {
    let i = insns[pc];
    let at = |d: i64| -> Option<usize> {
        let t = pc as i64 + 1 + d;
        (t >= 0 && (t as usize) < insns.len()).then_some(t as usize)
    };
    let ways = if is_wide(i) {
        [at(1), None]
    } else if !is_jmp(i) {
        [at(0), None]
    } else {
        match i.code & 0xf0 {
            EXIT => [None, None],
            CALL => [at(0), None],
            // gotol keeps its offset in imm.
            JA if class(i) == CLASS_JMP32 => [at(i64::from(i.imm)), None],
            JA => [at(i64::from(i.off)), None],
            _ => match known {
                Some(true) => [at(i64::from(i.off)), None],
                Some(false) => [at(0), None],
                None => [at(0), at(i64::from(i.off))],
            },
        }
    };
    ways.into_iter().flatten()
}

/// The starts of the program's functions: 0, the targets of BPF-to-BPF
/// calls, and of callback addresses (`ld_imm64` of a function).
fn entries(insns: &[Insn]) -> Vec<usize> {
    let mut e = vec![0];
    let mut pc = 0;
    while pc < insns.len() {
        let i = insns[pc];
        let call =
            class(i) == CLASS_JMP && i.code & 0xf0 == CALL && i.src() == usize::from(PSEUDO_CALL);
        let func = is_wide(i) && i.src() == usize::from(PSEUDO_FUNC);
        if call || func {
            let t = pc as i64 + 1 + i64::from(i.imm);
            if t >= 0 && (t as usize) < insns.len() {
                e.push(t as usize);
            }
        }
        pc += if is_wide(i) { 2 } else { 1 };
    }
    e.sort_unstable();
    e.dedup();
    e
}

fn read(f: &Frozen, off: i64, size: usize) -> Option<u64> {
    let start = usize::try_from(off).ok()?;
    let bytes = f.data.get(start..start.checked_add(size)?)?;
    let mut b = [0u8; 8];
    b[..size].copy_from_slice(bytes);
    Some(u64::from_le_bytes(b))
}

fn mem_size(i: Insn) -> usize {
    match i.code & 0x18 {
        0x00 => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    }
}

/// The 64-bit value of an ALU instruction's immediate operand.
fn imm_operand(i: Insn) -> u64 {
    if class(i) == CLASS_ALU64 {
        i64::from(i.imm) as u64
    } else {
        u64::from(i.imm as u32)
    }
}

/// `a op b` as the instruction computes it, when the pass models it. Not
/// division, remainder or negation: the verifier does not follow constants
/// through them on every kernel, and the pass must never know a value the
/// verifier does not (a jump left for the verifier to decide must be one
/// it can decide).
fn alu(i: Insn, a: u64, b: u64) -> Option<u64> {
    let wide = class(i) == CLASS_ALU64;
    // Signed division and sign-extending moves (cpu v4) are not modelled.
    if i.off != 0 {
        return None;
    }
    let (a, b) = if wide {
        (a, b)
    } else {
        (a & 0xffff_ffff, b & 0xffff_ffff)
    };
    let bits = if wide { 64 } else { 32 };
    let r = match i.code & 0xf0 {
        OP_ADD => a.wrapping_add(b),
        OP_SUB => a.wrapping_sub(b),
        OP_MUL => a.wrapping_mul(b),
        OP_OR => a | b,
        OP_AND => a & b,
        OP_LSH => a.checked_shl((b % bits) as u32).unwrap_or(0),
        OP_RSH => a.checked_shr((b % bits) as u32).unwrap_or(0),
        OP_XOR => a ^ b,
        OP_MOV => b,
        OP_ARSH => {
            if wide {
                ((a as i64) >> (b % 64)) as u64
            } else {
                i64::from((a as u32 as i32) >> (b % 32)) as u64
            }
        }
        _ => return None,
    };
    Some(if wide { r } else { r & 0xffff_ffff })
}

/// All ones in an operation's width.
fn ones(wide: bool) -> u64 {
    if wide {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    }
}

/// The result of `a op b` when one known operand decides it alone: AND or
/// MUL with zero, OR with all ones. Not every kernel's verifier knows
/// these results when the other operand is an unknown register, so the
/// pass must not keep the knowledge to itself: `rewrite` turns every such
/// step into a move of the constant, which every verifier follows.
fn absorbed(op: u8, a: Val, b: Val, wide: bool) -> Option<u64> {
    let is = |v: Val, k: u64| matches!(v, Val::Const(x) if x & ones(wide) == k);
    match op {
        OP_AND | OP_MUL if is(a, 0) || is(b, 0) => Some(0),
        OP_OR if is(a, ones(wide)) || is(b, ones(wide)) => Some(ones(wide)),
        _ => None,
    }
}

/// The register `i` (`dst op= src`, dst known) leaves as `src` itself: AND
/// with all ones, OR, XOR or ADD with zero. A move is one step shorter in
/// the chain and frees the constant's register.
fn identity_of(i: Insn, dst: Val) -> bool {
    let wide = class(i) == CLASS_ALU64;
    let Val::Const(a) = dst else { return false };
    let a = a & ones(wide);
    match i.code & 0xf0 {
        OP_AND => a == ones(wide),
        OP_OR | OP_XOR | OP_ADD => a == 0,
        _ => false,
    }
}

/// Whether a 64-bit `dst op= src` with this `src` leaves dst as it was (a
/// 32-bit one would still clear the upper half).
fn keeps_dst(op: u8, src: Val) -> bool {
    match (op, src) {
        (OP_ADD | OP_SUB | OP_OR | OP_XOR | OP_LSH | OP_RSH | OP_ARSH, Val::Const(0)) => true,
        (OP_AND, Val::Const(b)) => b == u64::MAX,
        _ => false,
    }
}

/// Whether conditional jump `i` is taken for `a op b` (None: not modelled).
fn taken(i: Insn, a: u64, b: u64) -> Option<bool> {
    let (a, b, sa, sb) = if class(i) == CLASS_JMP32 {
        let (a, b) = (a as u32, b as u32);
        (
            u64::from(a),
            u64::from(b),
            i64::from(a as i32),
            i64::from(b as i32),
        )
    } else {
        (a, b, a as i64, b as i64)
    };
    Some(match i.code & 0xf0 {
        0x10 => a == b,
        0x20 => a > b,
        0x30 => a >= b,
        0x40 => a & b != 0,
        0x50 => a != b,
        0x60 => sa > sb,
        0x70 => sa >= sb,
        0xa0 => a < b,
        0xb0 => a <= b,
        0xc0 => sa < sb,
        0xd0 => sa <= sb,
        _ => return None,
    })
}

/// The register values after instruction `pc`, given those before it.
fn step(insns: &[Insn], pc: usize, f: &Frozen, r: &mut Regs) {
    let i = insns[pc];
    let d = i.dst();
    if d > FP || i.src() > FP {
        *r = NOTHING;
        return;
    }
    match class(i) {
        CLASS_LD if is_wide(i) => {
            let hi = insns.get(pc + 1).map_or(0, |n| n.imm as u32);
            r[d] = match i.src() as u8 {
                0 => Val::Const(u64::from(hi) << 32 | u64::from(i.imm as u32)),
                PSEUDO_MAP_VALUE if i.imm == f.fd => Val::Ro(i64::from(hi as i32)),
                _ => Val::Unknown,
            };
        }
        CLASS_LDX => {
            r[d] = match (i.code & 0xe0, r[i.src()]) {
                (MODE_MEM, Val::Ro(o)) => {
                    read(f, o + i64::from(i.off), mem_size(i)).map_or(Val::Unknown, Val::Const)
                }
                _ => Val::Unknown,
            };
        }
        CLASS_ST => {}
        // Atomics may write their source register, r0, or (load-acquire)
        // their destination.
        CLASS_STX => {
            if i.code & 0xe0 != MODE_MEM {
                r[i.src()] = Val::Unknown;
                r[0] = Val::Unknown;
                r[d] = Val::Unknown;
            }
        }
        CLASS_ALU | CLASS_ALU64 => {
            let b = if x_src(i) {
                r[i.src()]
            } else {
                Val::Const(imm_operand(i))
            };
            let op = i.code & 0xf0;
            let wide = class(i) == CLASS_ALU64;
            r[d] = match (op, r[d], b) {
                (OP_MOV, _, Val::Ro(o)) if wide && i.off == 0 => Val::Ro(o),
                (OP_MOV, _, Val::Const(b)) => alu(i, 0, b).map_or(Val::Unknown, Val::Const),
                (OP_MOV, _, _) => Val::Unknown,
                (_, Val::Const(a), Val::Const(b)) => alu(i, a, b).map_or(Val::Unknown, Val::Const),
                (OP_ADD, Val::Ro(o), Val::Const(b)) if wide => Val::Ro(o.wrapping_add(b as i64)),
                _ if i.off == 0 => absorbed(op, r[d], b, wide).map_or(Val::Unknown, Val::Const),
                _ => Val::Unknown,
            };
        }
        CLASS_JMP | CLASS_JMP32 => {
            if i.code & 0xf0 == CALL {
                for v in &mut r[0..=5] {
                    *v = Val::Unknown;
                }
            }
        }
        _ => *r = NOTHING,
    }
}

/// The outcome of conditional jump `pc` when both operands are known.
fn decided(i: Insn, r: &Regs) -> Option<bool> {
    if !is_jmp(i) || matches!(i.code & 0xf0, JA | CALL | EXIT) {
        return None;
    }
    let a = match r[i.dst()] {
        Val::Const(a) => a,
        _ => return None,
    };
    let b = if i.code & SRC_X != 0 {
        match r[i.src()] {
            Val::Const(b) => b,
            _ => return None,
        }
    } else {
        i64::from(i.imm) as u64
    };
    taken(i, a, b)
}

fn join(a: &mut Regs, b: &Regs) -> bool {
    let mut changed = false;
    for (x, y) in a.iter_mut().zip(b) {
        if *x != *y && *x != Val::Unknown {
            *x = Val::Unknown;
            changed = true;
        }
    }
    changed
}

/// Register values before each reachable instruction (None: unreached,
/// counting decided jumps).
fn analyse(insns: &[Insn], f: &Frozen) -> Vec<Option<Regs>> {
    let mut state: Vec<Option<Regs>> = vec![None; insns.len()];
    let mut work = Vec::new();
    for e in entries(insns) {
        state[e] = Some(NOTHING);
        work.push(e);
    }
    while let Some(pc) = work.pop() {
        let Some(before) = state[pc] else { continue };
        let mut after = before;
        step(insns, pc, f, &mut after);
        for s in successors(insns, pc, decided(insns[pc], &before)) {
            let changed = match &mut state[s] {
                Some(old) => join(old, &after),
                slot @ None => {
                    *slot = Some(after);
                    true
                }
            };
            if changed {
                work.push(s);
            }
        }
    }
    state
}

/// Whether `v` survives as the sign-extended 32-bit immediate of a 64-bit
/// operation.
fn fits64(v: u64) -> Option<i32> {
    let s = v as i64;
    (s == i64::from(s as i32)).then_some(s as i32)
}

/// A move of `v` into `dst` of the same width as `i` (None: not encodable).
fn mov(dst: usize, v: u64, wide: bool) -> Option<Insn> {
    let regs = regs(dst as u8, 0);
    if wide {
        if let Some(imm) = fits64(v) {
            return Some(Insn {
                code: CLASS_ALU64 | OP_MOV,
                regs,
                off: 0,
                imm,
            });
        }
    }
    // A 32-bit move zero-extends.
    (v <= u64::from(u32::MAX)).then_some(Insn {
        code: CLASS_ALU | OP_MOV,
        regs,
        off: 0,
        imm: v as u32 as i32,
    })
}

/// `i` with its register operand replaced by the immediate `b`: 64-bit
/// operations (`wide`) take it sign-extended, so it must fit; 32-bit ones
/// see its low half.
fn with_imm(i: Insn, b: u64, wide: bool) -> Option<Insn> {
    let imm = if wide { fits64(b)? } else { b as u32 as i32 };
    Some(Insn {
        code: i.code & !SRC_X,
        regs: regs(i.dst() as u8, 0),
        off: i.off,
        imm,
    })
}

/// Whether the verifier accepts `b` as the immediate of ALU instruction `i`
/// (no division by a constant zero, no shift by its width or more).
fn imm_ok(i: Insn, b: u64) -> bool {
    let bits = if class(i) == CLASS_ALU64 { 64 } else { 32 };
    match i.code & 0xf0 {
        OP_DIV | OP_MOD => b != 0,
        OP_LSH | OP_RSH | OP_ARSH => b < bits,
        _ => true,
    }
}

/// Rewrites with what `analyse` knows: loads and arithmetic of known values
/// become moves, known register operands immediates.
fn rewrite(insns: &mut [Insn], state: &[Option<Regs>], f: &Frozen) -> Folded {
    let mut n = Folded::default();
    for pc in 0..insns.len() {
        let Some(before) = state[pc] else { continue };
        let i = insns[pc];
        let mut after = before;
        step(insns, pc, f, &mut after);
        match class(i) {
            CLASS_LDX if i.code & 0xe0 == MODE_MEM => {
                if let (Val::Ro(_), Val::Const(v)) = (before[i.src()], after[i.dst()]) {
                    if let Some(m) = mov(i.dst(), v, true) {
                        insns[pc] = m;
                        n.loads += 1;
                    }
                }
            }
            CLASS_ALU | CLASS_ALU64 if i.off == 0 => {
                let wide = class(i) == CLASS_ALU64;
                let op = i.code & 0xf0;
                if let Val::Const(v) = after[i.dst()] {
                    // Already a move of an immediate: nothing to gain.
                    if op == OP_MOV && i.code & SRC_X == 0 {
                        continue;
                    }
                    if let Some(m) = mov(i.dst(), v, wide) {
                        insns[pc] = m;
                        n.alu += 1;
                    }
                } else if x_src(i) && op != OP_MOV && identity_of(i, before[i.dst()]) {
                    // A move of the same width (a 32-bit one zero-extends,
                    // as the 32-bit operation would).
                    insns[pc] = Insn {
                        code: (i.code & 0x0f) | OP_MOV,
                        ..i
                    };
                    n.alu += 1;
                } else if wide && x_src(i) && keeps_dst(op, before[i.src()]) {
                    insns[pc] = NOP;
                    n.alu += 1;
                } else if x_src(i) && op != OP_MOV {
                    // A 32-bit operation sees the low half only.
                    let low = |b: u64| if wide { b } else { b & 0xffff_ffff };
                    if let Val::Const(b) = before[i.src()].clone_if(|b| imm_ok(i, low(b))) {
                        if let Some(k) = with_imm(i, b, wide) {
                            insns[pc] = k;
                            n.operands += 1;
                        }
                    }
                }
            }
            CLASS_JMP | CLASS_JMP32
                if i.code & SRC_X != 0 && !matches!(i.code & 0xf0, JA | CALL | EXIT) =>
            {
                if let Val::Const(b) = before[i.src()] {
                    if let Some(k) = with_imm(i, b, class(i) == CLASS_JMP) {
                        insns[pc] = k;
                        n.operands += 1;
                    }
                }
            }
            _ => {}
        }
    }
    n
}

/// Which instructions the kernel's CFG check reaches (every way of every
/// jump, from every function's start): it refuses a program with any
/// instruction it cannot reach.
fn reachable(insns: &[Insn]) -> Vec<bool> {
    let mut seen = vec![false; insns.len()];
    let mut work = entries(insns);
    while let Some(pc) = work.pop() {
        if std::mem::replace(&mut seen[pc], true) {
            continue;
        }
        work.extend(successors(insns, pc, None).filter(|&s| !seen[s]));
    }
    seen
}

/// Replaces conditional jumps that known values decide by `ja` (taken) or
/// `ja +0` (never taken). The verifier folds such a jump itself only when
/// the way not taken reaches code nothing else does (and then drops that
/// code); a way that also joins other paths keeps the compare and the
/// constant it reads. A jump whose replacement would leave code unreachable
/// stays, for the verifier.
fn fold_jumps(insns: &mut [Insn], state: &[Option<Regs>]) -> usize {
    let before = reachable(insns);
    // (pc, the jump, the way it drops).
    let mut folds: Vec<(usize, Insn, usize)> = Vec::new();
    for pc in 0..insns.len() {
        let Some(regs) = state[pc] else { continue };
        let i = insns[pc];
        let Some(t) = decided(i, &regs) else { continue };
        let target = pc as i64 + 1 + i64::from(i.off);
        let dropped = if t { pc + 1 } else { target as usize };
        if i.off == 0 || target < 0 || target as usize >= insns.len() {
            continue;
        }
        folds.push((pc, i, dropped));
    }
    // All at once; then put back every jump whose dropped way the others
    // left unreachable (code lost behind a folded jump is lost at the
    // dropped way of the last folded jump on its way, so each round puts
    // back at least one), until nothing is lost.
    loop {
        for &(pc, i, dropped) in &folds {
            insns[pc] = if dropped == pc + 1 {
                Insn {
                    code: CLASS_JMP | JA,
                    regs: 0,
                    off: i.off,
                    imm: 0,
                }
            } else {
                NOP
            };
        }
        let now = reachable(insns);
        if !before.iter().zip(&now).any(|(was, is)| *was && !*is) {
            return folds.len();
        }
        folds.retain(|&(pc, i, dropped)| {
            let keep = now[dropped];
            if !keep {
                insns[pc] = i;
            }
            keep
        });
    }
}

/// Registers instruction `i` reads.
fn uses(i: Insn) -> u16 {
    let (d, s) = (1u16 << i.dst(), 1u16 << i.src());
    match class(i) {
        CLASS_LD if is_wide(i) => 0,
        // Legacy packet loads read r6 (the context) and clobber r0-r5.
        CLASS_LD => 1 << 6 | if i.code & 0xe0 == 0x40 { s } else { 0 },
        CLASS_LDX => s,
        CLASS_ST => d,
        CLASS_STX => d | s | if i.code & 0xe0 != MODE_MEM { 1 } else { 0 },
        CLASS_ALU | CLASS_ALU64 => {
            let op = i.code & 0xf0;
            let x = if x_src(i) { s } else { 0 };
            if op == OP_MOV {
                x
            } else {
                d | x
            }
        }
        _ => match i.code & 0xf0 {
            JA => 0,
            // Arguments: all five, conservatively.
            CALL => 0b11_1110,
            EXIT => 1,
            _ => d | if i.code & SRC_X != 0 { s } else { 0 },
        },
    }
}

/// Registers instruction `i` writes.
fn defs(i: Insn) -> u16 {
    match class(i) {
        CLASS_LD if is_wide(i) => 1 << i.dst(),
        CLASS_LD => 0b11_1111,
        CLASS_LDX | CLASS_ALU | CLASS_ALU64 => 1 << i.dst(),
        CLASS_STX if i.code & 0xe0 != MODE_MEM => 1 << i.src() | 1 << i.dst() | 1,
        CLASS_JMP | CLASS_JMP32 if i.code & 0xf0 == CALL => 0b11_1111,
        _ => 0,
    }
}

/// Whether dropping `i` when its result is unread changes nothing but that
/// register: arithmetic, constants and map-value addresses, `.rodata` loads.
fn pure(i: Insn, before: &Regs) -> bool {
    match class(i) {
        CLASS_LD => is_wide(i) && matches!(i.src() as u8, 0 | PSEUDO_MAP_VALUE),
        CLASS_LDX => i.code & 0xe0 == MODE_MEM && matches!(before[i.src()], Val::Ro(_)),
        // Division by a register can fault nowhere in BPF, but keep it.
        CLASS_ALU | CLASS_ALU64 => i.dst() != FP,
        _ => false,
    }
}

/// Replaces reachable pure instructions whose result nothing reads by `ja +0`.
fn remove_dead(insns: &mut [Insn], state: &[Option<Regs>]) -> usize {
    let n = insns.len();
    // Liveness over every way of the CFG, the ways known values rule out
    // included: if the verifier walks one of them after all, nothing it
    // reads there was removed.
    let mut starts = vec![false; n];
    let mut pc = 0;
    while pc < n {
        starts[pc] = true;
        pc += if is_wide(insns[pc]) { 2 } else { 1 };
    }
    // Live registers after each instruction.
    let mut live_out = vec![0u16; n];
    let mut changed = true;
    while changed {
        changed = false;
        for pc in (0..n).rev() {
            if !starts[pc] {
                continue;
            }
            let mut out = 0u16;
            for s in successors(insns, pc, None) {
                out |= (live_out[s] & !defs(insns[s])) | uses(insns[s]);
            }
            if out != live_out[pc] {
                live_out[pc] = out;
                changed = true;
            }
        }
    }
    let mut removed = 0;
    for pc in 0..n {
        let Some(before) = state[pc] else { continue };
        let i = insns[pc];
        if i == NOP || defs(i) == 0 || !pure(i, &before) {
            continue;
        }
        if live_out[pc] & defs(i) == 0 {
            insns[pc] = NOP;
            if is_wide(i) {
                insns[pc + 1] = NOP;
            }
            removed += 1;
        }
    }
    removed
}

/// Folds `f` into `insns` until nothing changes; returns what changed.
pub fn fold(insns: &mut [Insn], f: &Frozen) -> Folded {
    let mut total = Folded::default();
    // Each round only replaces instructions by simpler ones, so this ends;
    // the bound is a guard.
    for _ in 0..8 {
        let state = analyse(insns, f);
        let mut n = rewrite(insns, &state, f);
        n.jumps = fold_jumps(insns, &state);
        let state = analyse(insns, f);
        n.removed = remove_dead(insns, &state);
        if !n.any() {
            break;
        }
        total.add(n);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    const FD: i32 = 7;
    /// The frozen map: u32 6 at 0, u32 7 at 4, u64 2^32 at 8.
    const DATA: [u8; 16] = [6, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];

    fn frozen() -> Frozen<'static> {
        Frozen {
            fd: FD,
            data: &DATA,
        }
    }

    fn op(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: regs(dst, src),
            off,
            imm,
        }
    }

    /// `ld_imm64 dst, map_value(fd) + off`: two slots.
    fn map_value(dst: u8, fd: i32, off: i32) -> [Insn; 2] {
        [
            op(LD_IMM64, dst, PSEUDO_MAP_VALUE, 0, fd),
            op(0, 0, 0, 0, off),
        ]
    }

    fn ldxw(dst: u8, src: u8, off: i16) -> Insn {
        op(CLASS_LDX | MODE_MEM, dst, src, off, 0)
    }

    fn ldxdw(dst: u8, src: u8, off: i16) -> Insn {
        op(CLASS_LDX | MODE_MEM | 0x18, dst, src, off, 0)
    }

    fn mov64(dst: u8, imm: i32) -> Insn {
        op(CLASS_ALU64 | OP_MOV, dst, 0, 0, imm)
    }

    fn mov64x(dst: u8, src: u8) -> Insn {
        op(CLASS_ALU64 | OP_MOV | SRC_X, dst, src, 0, 0)
    }

    fn exit() -> Insn {
        op(CLASS_JMP | EXIT, 0, 0, 0, 0)
    }

    fn prog(parts: &[&[Insn]]) -> Vec<Insn> {
        parts.concat()
    }

    /// `r0 = 2; r2 = frozen u32 at 4 (7); r2 &= 2; if r2 == 0 goto +off`,
    /// then what `tail` adds.
    fn frozen_test(off: i16, tail: &[Insn]) -> Vec<Insn> {
        prog(&[
            &[mov64(0, 2)],
            &map_value(1, FD, 0),
            &[
                ldxw(2, 1, 4),
                op(CLASS_ALU64 | OP_AND, 2, 0, 0, 2),
                op(CLASS_JMP | 0x10, 2, 0, off, 0),
            ],
            tail,
        ])
    }

    #[test]
    fn a_frozen_test_whose_other_way_joins_elsewhere_goes_entirely() {
        // The jump (never taken) lands on the exit the other way reaches too.
        let mut p = frozen_test(1, &[mov64(0, 1), exit()]);
        let n = fold(&mut p, &frozen());
        // r0 = 2 went too: r0 = 1 always overwrites it before the exit.
        assert_eq!(p, prog(&[&[NOP; 6], &[mov64(0, 1), exit()]]));
        let want = Folded {
            loads: 1,
            alu: 1,
            operands: 0,
            jumps: 1,
            removed: 4,
        };
        assert_eq!(n, want);
    }

    #[test]
    fn a_frozen_test_whose_other_way_only_it_reaches_is_left_to_the_verifier() {
        // Folding the jump would leave its target unreachable, which the
        // kernel refuses: it stays, and so does the constant it reads.
        let tail = [mov64(0, 1), exit(), mov64(0, 3), exit()];
        let mut p = frozen_test(2, &tail);
        let n = fold(&mut p, &frozen());
        let jump = op(CLASS_JMP | 0x10, 2, 0, 2, 0);
        assert_eq!(p, prog(&[&[NOP; 4], &[mov64(2, 2), jump], &tail]));
        assert_eq!((n.loads, n.alu, n.jumps, n.removed), (1, 1, 0, 3));
    }

    #[test]
    fn an_always_taken_jump_becomes_unconditional_when_its_fall_through_is_reached_otherwise() {
        let mut p = vec![
            ldxw(3, 1, 0),
            op(CLASS_JMP | 0x50, 3, 0, 2, 0), // if r3 != 0 goto +2 (unknown)
            mov64(2, 5),
            op(CLASS_JMP | 0x10, 2, 0, 1, 5), // if r2 == 5 goto +1 (always)
            mov64(0, 1),                      // also reached from the first jump
            exit(),
        ];
        fold(&mut p, &frozen());
        assert_eq!(
            p,
            vec![
                ldxw(3, 1, 0),
                op(CLASS_JMP | 0x50, 3, 0, 2, 0),
                NOP,
                op(CLASS_JMP | JA, 0, 0, 1, 0),
                mov64(0, 1),
                exit(),
            ]
        );
    }

    #[test]
    fn what_it_cannot_know_stays_as_it_is() {
        // r1 is the context; another map's value; past the frozen value's end.
        let mut p = prog(&[
            &[ldxw(2, 1, 0), op(CLASS_ALU64 | OP_AND, 2, 0, 0, 1)],
            &map_value(3, FD + 1, 0),
            &[ldxw(4, 3, 0), op(CLASS_ALU64 | OP_ADD | SRC_X, 2, 4, 0, 0)],
            &map_value(5, FD, 16),
            &[ldxw(6, 5, 0), op(CLASS_ALU64 | OP_ADD | SRC_X, 2, 6, 0, 0)],
            &[mov64x(0, 2), exit()],
        ]);
        let before = p.clone();
        assert_eq!(fold(&mut p, &frozen()), Folded::default());
        assert_eq!(p, before);
    }

    #[test]
    fn two_ways_with_two_values_join_to_unknown() {
        let mut p = vec![
            ldxw(2, 1, 0),
            op(CLASS_JMP | 0x10, 2, 0, 2, 0), // if r2 == 0 goto +2
            mov64(3, 1),
            op(CLASS_JMP | JA, 0, 0, 1, 0),
            mov64(3, 2),
            mov64x(0, 3),
            exit(),
        ];
        let before = p.clone();
        fold(&mut p, &frozen());
        assert_eq!(p, before);
    }

    #[test]
    fn stores_calls_and_their_operands_stay() {
        let mut p = prog(&[
            &map_value(1, FD, 0),
            &[
                ldxw(2, 1, 0),                                // r2 = 6
                op(CLASS_STX | MODE_MEM, FP as u8, 2, -4, 0), // *(u32 *)(r10 - 4) = r2
                mov64(1, 5),
                op(CLASS_JMP | CALL, 0, 0, 0, 1),
                exit(),
            ],
        ]);
        fold(&mut p, &frozen());
        assert_eq!(
            p,
            vec![
                NOP,
                NOP,
                mov64(2, 6),
                op(CLASS_STX | MODE_MEM, FP as u8, 2, -4, 0),
                mov64(1, 5),
                op(CLASS_JMP | CALL, 0, 0, 0, 1),
                exit(),
            ]
        );
    }

    #[test]
    fn known_operands_become_immediates_but_never_a_zero_divisor() {
        let mut p = vec![
            ldxw(4, 1, 0),
            mov64(3, 0),
            op(CLASS_ALU64 | OP_DIV | SRC_X, 4, 3, 0, 0), // r4 /= r3 (0)
            mov64(5, 8),
            op(CLASS_ALU64 | OP_ADD | SRC_X, 4, 5, 0, 0), // r4 += r5
            op(CLASS_JMP | 0x20 | SRC_X, 4, 5, 0, 0),     // if r4 > r5 goto +0
            mov64x(0, 4),
            exit(),
        ];
        let n = fold(&mut p, &frozen());
        assert_eq!(
            p,
            vec![
                ldxw(4, 1, 0),
                mov64(3, 0),
                op(CLASS_ALU64 | OP_DIV | SRC_X, 4, 3, 0, 0),
                NOP,
                op(CLASS_ALU64 | OP_ADD, 4, 0, 0, 8),
                op(CLASS_JMP | 0x20, 4, 0, 0, 8),
                mov64x(0, 4),
                exit(),
            ]
        );
        assert_eq!(n.operands, 2);
    }

    #[test]
    fn an_operand_that_decides_alone_folds_and_an_identity_becomes_a_move() {
        let mut p = vec![
            ldxw(4, 1, 0),                                // r4 = unknown
            ldxw(6, 1, 4),                                // r6 = unknown
            mov64(3, 0),                                  // r3 = 0
            op(CLASS_ALU64 | OP_AND | SRC_X, 3, 4, 0, 0), // r3 &= r4: 0
            op(CLASS_JMP | 0x50, 3, 0, 1, 0),             // if r3 != 0 goto +1
            mov64(5, -1),                                 // r5 = ~0
            op(CLASS_ALU64 | OP_AND | SRC_X, 5, 6, 0, 0), // r5 &= r6: r6
            mov64(7, 0),                                  // w7 = 0
            op(CLASS_ALU | OP_OR | SRC_X, 7, 4, 0, 0),    // w7 |= w4: w4
            op(CLASS_ALU64 | OP_ADD | SRC_X, 5, 7, 0, 0), // r5 += r7
            op(CLASS_ALU64 | OP_ADD | SRC_X, 5, 3, 0, 0), // r5 += r3 (0)
            mov64x(0, 5),
            exit(),
        ];
        fold(&mut p, &frozen());
        assert_eq!(
            p,
            vec![
                ldxw(4, 1, 0),
                ldxw(6, 1, 4),
                NOP,
                NOP,
                // Never taken, and its target is reached anyway: a no-op.
                NOP,
                NOP,
                mov64x(5, 6),
                NOP,
                op(CLASS_ALU | OP_MOV | SRC_X, 7, 4, 0, 0),
                op(CLASS_ALU64 | OP_ADD | SRC_X, 5, 7, 0, 0),
                NOP,
                mov64x(0, 5),
                exit(),
            ]
        );
    }

    #[test]
    fn a_decided_jump_keeps_its_dead_side_out_of_the_values() {
        let mut p = prog(&[
            &map_value(1, FD, 0),
            &[
                ldxw(2, 1, 4),                    // r2 = 7
                op(CLASS_JMP | 0x10, 2, 0, 1, 7), // if r2 == 7 goto +1 (always)
                mov64(2, 9),                      // never runs
                mov64x(0, 2),                     // r0 = 7
                exit(),
            ],
        ]);
        fold(&mut p, &frozen());
        // The jump stays for the verifier (which drops the dead side), so
        // r2 stays; r0 is known.
        assert_eq!(p[2], mov64(2, 7));
        assert_eq!(p[3], op(CLASS_JMP | 0x10, 2, 0, 1, 7));
        assert_eq!(p[4], mov64(2, 9));
        assert_eq!(p[5], mov64(0, 7));
    }

    #[test]
    fn a_byte_swap_keeps_its_order_bit_though_r0_is_known() {
        // be16 has the 0x08 bit that means "register operand" elsewhere.
        let be16 = op(CLASS_ALU | OP_END | SRC_X, 2, 0, 0, 16);
        let mut p = vec![mov64(0, 16), ldxw(2, 1, 0), be16, mov64x(0, 2), exit()];
        fold(&mut p, &frozen());
        assert_eq!(p[2], be16);
    }

    #[test]
    fn a_32_bit_division_by_a_value_whose_low_half_is_zero_stays_a_register_operand() {
        // w4 /= w3 with r3 = 2^32: the verifier refuses `w4 /= 0` as K.
        let div = op(CLASS_ALU | OP_DIV | SRC_X, 4, 3, 0, 0);
        let mut p = prog(&[
            &[op(LD_IMM64, 3, 0, 0, 0), op(0, 0, 0, 0, 1)],
            &[ldxw(4, 1, 0), div, mov64x(0, 4), exit()],
        ]);
        fold(&mut p, &frozen());
        assert_eq!(p[3], div);
    }

    #[test]
    fn a_value_no_immediate_holds_stays_a_load() {
        let mut p = prog(&[&map_value(1, FD, 8), &[ldxdw(0, 1, 0), exit()]]);
        let before = p.clone();
        assert_eq!(fold(&mut p, &frozen()).loads, 0);
        assert_eq!(p, before);
    }

    #[test]
    fn values_flow_through_registers_and_into_callbacks_unknown() {
        // A callback (its address taken by ld_imm64) starts knowing nothing,
        // even when the caller's registers were known.
        let mut p = prog(&[
            &[mov64(1, 3)],
            &[op(LD_IMM64, 2, PSEUDO_FUNC, 0, 3), op(0, 0, 0, 0, 0)], // r2 = &callback
            &[op(CLASS_JMP | CALL, 0, 0, 0, 181), exit()],
            // callback at 5
            &[mov64x(0, 1), exit()],
        ]);
        let before = p.clone();
        fold(&mut p, &frozen());
        assert_eq!(p, before);
        assert_eq!(entries(&p), vec![0, 5]);
    }
}
