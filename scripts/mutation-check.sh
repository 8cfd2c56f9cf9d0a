#!/usr/bin/env bash
# Mutation check of the C data plane (issue 6, item 3): shows that the
# differential and data-plane tests catch planted bugs.
#
# In a throwaway clone of the repository (never in this checkout), applies ONE
# mutant at a time from the fixed list below to bpf/parse.h, bpf/classify.h or
# bpf/xdpwall.bpf.c, rebuilds, runs
#     cargo test -p xdpwall-dataplane --test differential --test dataplane
# (as root, CI=true so privileged tests fail instead of skipping), restores the
# file and goes on. A build failure or verifier rejection is "killed
# (build/load)", a failing test "killed (tests)", a timeout "killed (timeout)",
# all green "SURVIVED". Prints a table and the kill rate; exits 0 (a report,
# not a gate) unless the unmutated baseline itself fails.
#
# Usage: scripts/mutation-check.sh [--first N] [--only 1,5,7] [--list]
#                                  [--timeout SECS] [--no-baseline] [--keep]
#   --first N      run only the first N mutants of the list
#   --only LIST    run only these mutant numbers (comma-separated)
#   --list         print the mutants and exit
#   --timeout S    per-mutant limit for the build and for the test run (300)
#   --no-baseline  skip the unmutated build + test run
#   --keep         keep the clone (its path is printed)
# Environment: XW_MUT_TARGET (shared CARGO_TARGET_DIR, default
# /tmp/xw-mut-target: reused across runs so rebuilds are incremental),
# XW_MUT_LOGS (per-mutant logs, default /tmp/xw-mut-logs).
#
# The clone is of HEAD: uncommitted changes are not tested.
set -uo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

# --- The mutants: file @@ fixed-string line pattern @@ sed expression -----
# The pattern must match exactly one line of the file; the sed expression is
# applied to that line only and must change it.
MUTANTS=(
	# parse.h: Ethernet / VLAN
	'bpf/parse.h @@ if ((void *)(eth + 1) > c->end) @@ s/> c->end/>= c->end/'
	'bpf/parse.h @@ if (t != ETH_P_8021Q && t != ETH_P_8021AD) @@ s/t != ETH_P_8021AD/t != ETH_P_8021Q/'
	'bpf/parse.h @@ if (i == 0) @@ s/i == 0/i != 0/'
	# parse.h: IPv4
	'bpf/parse.h @@ if (ip->version != 4 || ip->ihl < 5) @@ s/ihl < 5/ihl < 4/'
	'bpf/parse.h @@ if (c->pos + hlen > c->end) @@ s/> c->end/>= c->end/'
	'bpf/parse.h @@ __builtin_memcpy(p->saddr, &ip->saddr, 4); @@ s/&ip->saddr/\&ip->daddr/'
	'bpf/parse.h @@ else if (frag & 0x2000) @@ s/0x2000/0x4000/'
	# parse.h: IPv6 extension headers
	'bpf/parse.h @@ nh == IPPROTO_FRAGMENT || nh == IPPROTO_AH; @@ s/nh == IPPROTO_AH/nh == IPPROTO_FRAGMENT/'
	'bpf/parse.h @@ if (!is_ipv6_ext(nh)) @@ s/!is_ipv6_ext/is_ipv6_ext/'
	'bpf/parse.h @@ len = ((__u32)h[1] + 2) * 4; @@ s/+ 2)/+ 1)/'
	'bpf/parse.h @@ if (is_ipv6_ext(nh) && p->frag != XW_FRAG_NON_FIRST) @@ s/&&/||/'
	# parse.h: L4
	'bpf/parse.h @@ if (th->doff < 5) @@ s/< 5/< 4/'
	'bpf/parse.h @@ p->sport = bpf_ntohs(th->source); @@ s/th->source/th->dest/'
	'bpf/parse.h @@ p->tcpflags = ((__u8 *)th)[13]; @@ s/\[13\]/[12]/'
	'bpf/parse.h @@ p->dport = bpf_ntohs(uh->dest); @@ s/uh->dest/uh->source/'
	'bpf/parse.h @@ p->sport = bpf_ntohs(sh->source); @@ s/sh->source/sh->dest/'
	'bpf/parse.h @@ if ((void *)(ic + 4) > c->end) @@ s/ic + 4/ic + 2/'
	'bpf/parse.h @@ p->icmp = (v6 << 16) @@ s/ic\[1\]/ic[2]/'
	'bpf/parse.h @@ p->frag = XW_FRAG_NOT_IP; @@ s/XW_FRAG_NOT_IP/XW_FRAG_NONE/'
	# classify.h
	'bpf/classify.h @@ d = entry(t->dir4, gen << 16 | a >> 16, 2 * XW_DIR_ENTRIES); @@ s/a >> 16/a >> 15/'
	'bpf/classify.h @@ *(__u32 *)k.addr = bpf_htonl(a & (~0u << (32 - (XW_LONG4_MIN + i)))); @@ s/(32 - /(33 - /'
	'bpf/classify.h @@ return entry(t->sport, p->sport, XW_PORT_ENTRIES); @@ s/p->sport/p->dport/'
	'bpf/classify.h @@ return entry(t->vlan, p->vlan_outer, XW_VLAN_ENTRIES); @@ s/vlan_outer/vlan_inner/'
	'bpf/classify.h @@ x &= word_of(m->cls[f], w) | word_of(m->cls[XW_F_MAX], w); @@ s/w) | word_of/w) \& word_of/'
	'bpf/classify.h @@ if (!(check & (1u << f)) || !USED(f)) @@ s/ || / \&\& /'
	'bpf/classify.h @@ if (r >= m->best) @@ s/>=/>/'
	'bpf/classify.h @@ if (!(e & XW_CAND_COUNT) && xw_rule_matches @@ s/if (!(e/if ((e/'
	'bpf/classify.h @@ return f != XW_F_MAX || id != m->cls[XW_F_VLAN]; @@ s/id != m->cls/id == m->cls/'
	'bpf/classify.h @@ if (xw_unlikely(g.hints & XW_ID_OVERFLOW)) { @@ s/g.hints \& XW_ID_OVERFLOW/0/'
	'bpf/classify.h @@ bump(rule->slot, bytes); @@ s/rule->slot/r/'
	'bpf/classify.h @@ m->p.gen = xw_tables.gen & 1; @@ s/\& 1;/\& 0;/'
	# xdpwall.bpf.c
	'bpf/xdpwall.bpf.c @@ verdict = a & 0xffff; @@ s/0xffff/0xfffe/'
	# classify.h: IPv4 trie nodes (added with them)
	'bpf/classify.h @@ e = n->c[(a >> 8) & (XW_NODE_FANOUT - 1)]; @@ s/a >> 8/a >> 9/'
	'bpf/classify.h @@ if (!(e & XW_ID_NODE)) @@ s/if (!(e/if ((e/'
	# classify.h: session 7 (the early stops)
	'bpf/classify.h @@ if (xw_likely(!lists)) @@ s/!lists/lists/'
	'bpf/classify.h @@ if (!(check >> f)) @@ s/check >> f/check >> (f + 1)/'
	# classify.h: session 8 (direct checks on the rule's record)
	'bpf/classify.h @@ return v - s->lo <= s->span; @@ s/<= s->span/< s->span/'
	'bpf/classify.h @@ if ((e & XW_CAND_DIRECT) && !direct_holds(m, r)) @@ s/!direct_holds/0 \&\& !direct_holds/'
	'bpf/classify.h @@ (m->p.key & d->key_mask) != d->key_want @@ s/!= d->key_want/== d->key_want/'
	# parse.h: session 9 (the ways rejoin): a mask that moves the cursor,
	# and the rejoin undone (the verifier's budget test must notice)
	'bpf/parse.h @@ off = ((__u64)pos - (__u64)c->start) & XW_HDR_OFF_MASK; @@ s/XW_HDR_OFF_MASK/0x3f/'
	'bpf/parse.h @@ c->pos = c->start + off; @@ s/c->start + off/pos + (off \& 0)/'
	# parse.h: session 9 (the fast path for untagged IPv4 TCP/UDP)
	'bpf/parse.h @@ (ip->frag_off & bpf_htons(0x3fff))) @@ s/0x3fff/0x1fff/'
	'bpf/parse.h @@ if ((void *)(l4 + 20) > c->end || (l4[12] >> 4) < 5) @@ s/< 5)/< 4)/'
	'bpf/parse.h @@ p->dport = bpf_ntohs(*(__be16 *)(l4 + 2)); @@ s/l4 + 2/l4 + 4/'
	'bpf/parse.h @@ __builtin_memcpy(p->saddr, &ip->saddr, sizeof(ip->saddr)); @@ s/&ip->saddr, sizeof/\&ip->daddr, sizeof/'
	# classify.h: session 10 (only the fields a rule checks directly)
	'bpf/parse.h @@ (__u64)(p->frag ^ (p->frag >> 1)) << XW_KEY_FRAG; @@ s/p->frag ^ (p->frag >> 1)/p->frag/'
	'bpf/classify.h @@ return !USED(XW_F_DPORT) || in_span(m->p.dport, &d->port[1]); @@ s/port\[1\]/port[0]/'
	# fold.rs (session 11): the load-time folding of .rodata into the program
	'crates/dataplane/src/fold.rs @@ 0x10 => a == b, @@ s/a == b/a != b/'
	'crates/dataplane/src/fold.rs @@ OP_AND => a & b, @@ s/a \& b/a | b/'
	'crates/dataplane/src/fold.rs @@ CALL => 0b11_1110, @@ s/0b11_1110/0b00_0110/'
	'crates/dataplane/src/fold.rs @@ Some(u64::from_le_bytes(b)) @@ s/from_le_bytes/from_be_bytes/'
	'crates/dataplane/src/fold.rs @@ if *x != *y && *x != Val::Unknown { @@ s/if \*x != \*y \&\& /if false \&\& /'
	# session 12: packed direct checks, the class's first candidate, lazy count lists
	'bpf/classify.h @@ if ((e & XW_CAND_DIRECT) && !direct_ok(m, &c->first.d)) @@ s/!direct_ok/0 \&\& !direct_ok/'
	'bpf/xdpwall.bpf.c @@ } else if (rule == m.first_rule && m.first_action <= XW_ACT_DROP) { @@ s/<= XW_ACT_DROP/<= XW_ACT_RATE_LIMIT/'
	'bpf/classify.h @@ if (has_count_rules && xw_unlikely(g.hints & XW_ID_COUNTS)) @@ s/XW_ID_COUNTS))/XW_ID_TERMINALS))/'
	'crates/dataplane/src/load.rs @@ if let Some((rule, &slot)) = first.and_then(|r| rules.get(r).zip(slots.get(r))) { @@ s/slots.get(r)/slots.get(0)/'
	'crates/rules/src/compile/discrete.rs @@ Some((k.mask | (all & !k.hi), k.want)) @@ s/k.mask | (all \& !k.hi)/k.mask/'
	'crates/dataplane/src/fold.rs @@ OP_OR | OP_XOR | OP_ADD => a == 0, @@ s/a == 0/a != 0/'
	# session 14: lone entries (a /16 with one longer IPv4 prefix)
	'bpf/classify.h @@ return (a & l->mask) == l->want ? l->inside : l->outside; @@ s/== l->want/!= l->want/'
	'bpf/classify.h @@ if (d & XW_ID_LONE) @@ s/d \& XW_ID_LONE/0/'
	'crates/dataplane/src/load.rs @@ d + lone_off @@ s/d + lone_off/d + off/'
)

FIRST=0
ONLY=""
LIST=0
TIMEOUT=300
BASELINE=1
KEEP=0
while [ $# -gt 0 ]; do
	case "$1" in
	--first) FIRST="$2"; shift 2 ;;
	--only) ONLY=",$2,"; shift 2 ;;
	--list) LIST=1; shift ;;
	--timeout) TIMEOUT="$2"; shift 2 ;;
	--no-baseline) BASELINE=0; shift ;;
	--keep) KEEP=1; shift ;;
	-h | --help) sed -n '2,27p' "$0"; exit 0 ;;
	*) echo "unknown argument: $1" >&2; exit 2 ;;
	esac
done

field() { # field N STRING: the N-th ' @@ '-separated field
	local n="$1" s="$2"
	case "$n" in
	1) printf '%s' "${s%% @@ *}" ;;
	2) s="${s#* @@ }"; printf '%s' "${s%% @@ *}" ;;
	3) s="${s#* @@ }"; printf '%s' "${s#* @@ }" ;;
	esac
}

selected() {
	local i="$1"
	if [ -n "$ONLY" ]; then
		[[ "$ONLY" == *",$i,"* ]]
	elif [ "$FIRST" -gt 0 ]; then
		[ "$i" -le "$FIRST" ]
	fi
}

if [ "$LIST" = 1 ]; then
	for i in "${!MUTANTS[@]}"; do
		m="${MUTANTS[$i]}"
		printf '%2d  %-18s %-58s %s\n' $((i + 1)) "$(field 1 "$m")" "$(field 2 "$m")" "$(field 3 "$m")"
	done
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	echo "mutation-check: needs root (the data-plane tests load XDP programs)" >&2
	exit 2
fi

WORK="$(mktemp -d /tmp/xw-mut.XXXXXX)"
export CARGO_TARGET_DIR="${XW_MUT_TARGET:-/tmp/xw-mut-target}"
LOGS="${XW_MUT_LOGS:-/tmp/xw-mut-logs}"
export CI=true
mkdir -p "$LOGS"
CUR_FILE=""
cleanup() {
	# Restore a file left mutated by an interrupt (the clone only, anyway).
	if [ -n "$CUR_FILE" ] && [ -f "$WORK/.pristine" ]; then
		cp "$WORK/.pristine" "$WORK/$CUR_FILE"
	fi
	if [ "$KEEP" = 1 ]; then
		echo "clone kept at $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

git clone -q --no-hardlinks "$REPO" "$WORK" || { echo "clone failed" >&2; exit 2; }
cd "$WORK" || exit 2
echo "clone: $WORK (HEAD $(git rev-parse --short HEAD)), target: $CARGO_TARGET_DIR, logs: $LOGS"

TEST=(cargo test -p xdpwall-dataplane --test differential --test dataplane)

# build_and_test LOG: prints build, load, tests, timeout or ok.
build_and_test() {
	local log="$1" rc
	timeout "$TIMEOUT" "${TEST[@]}" --no-run >"$log" 2>&1
	rc=$?
	[ $rc = 124 ] && { echo timeout; return; }
	[ $rc != 0 ] && { echo build; return; }
	timeout "$TIMEOUT" "${TEST[@]}" -- --test-threads="${XDPWALL_TEST_THREADS:-2}" >>"$log" 2>&1
	rc=$?
	[ $rc = 124 ] && { echo timeout; return; }
	[ $rc = 0 ] && { echo ok; return; }
	if grep -q "kernel refused to load the XDP program" "$log"; then
		echo load
	else
		echo tests
	fi
}

if [ "$BASELINE" = 1 ]; then
	echo "baseline (unmutated) ..."
	r="$(build_and_test "$LOGS/baseline.log")"
	if [ "$r" != ok ]; then
		echo "baseline is not green ($r): see $LOGS/baseline.log; no mutant run" >&2
		exit 1
	fi
	echo "baseline green"
fi

ROWS=()
killed=0
survived=0
skipped=0
run=0
for i in "${!MUTANTS[@]}"; do
	n=$((i + 1))
	selected "$n" || continue
	m="${MUTANTS[$i]}"
	file="$(field 1 "$m")"
	pat="$(field 2 "$m")"
	expr="$(field 3 "$m")"
	lines="$(grep -nF -- "$pat" "$file" | cut -d: -f1)"
	count="$(printf '%s' "$lines" | grep -c . || true)"
	desc="${expr}"
	if [ "$count" != 1 ]; then
		res="SKIPPED (pattern matches $count lines)"
		ROWS+=("$(printf '%2d | %-18s | %-5s | %-38s | %s' "$n" "$file" "-" "$desc" "$res")")
		skipped=$((skipped + 1))
		echo "[$n] $res"
		continue
	fi
	ln="$lines"
	cp "$file" "$WORK/.pristine"
	CUR_FILE="$file"
	sed -i "${ln}${expr}" "$file"
	if cmp -s "$file" "$WORK/.pristine"; then
		res="SKIPPED (sed changed nothing)"
		CUR_FILE=""
		ROWS+=("$(printf '%2d | %-18s | %-5s | %-38s | %s' "$n" "$file" "$ln" "$desc" "$res")")
		skipped=$((skipped + 1))
		echo "[$n] $res"
		continue
	fi
	echo "[$n] $file:$ln  $(sed -n "${ln}p" "$file" | sed 's/^[[:space:]]*//')"
	start=$SECONDS
	r="$(build_and_test "$LOGS/mutant-$n.log")"
	cp "$WORK/.pristine" "$file"
	CUR_FILE=""
	cmp -s "$file" "$WORK/.pristine" || { echo "restore failed" >&2; exit 2; }
	case "$r" in
	ok) res="SURVIVED"; survived=$((survived + 1)) ;;
	build | load) res="killed (build/load)"; killed=$((killed + 1)) ;;
	tests) res="killed (tests)"; killed=$((killed + 1)) ;;
	timeout) res="killed (timeout)"; killed=$((killed + 1)) ;;
	esac
	run=$((run + 1))
	echo "[$n] $res ($((SECONDS - start)) s)"
	ROWS+=("$(printf '%2d | %-18s | %-5s | %-38s | %s' "$n" "$file" "$ln" "$desc" "$res")")
done

echo
printf '%2s | %-18s | %-5s | %-38s | %s\n' "#" "file" "line" "mutation (sed)" "result"
printf -- '---|--------------------|-------|----------------------------------------|--------------------\n'
for row in "${ROWS[@]}"; do
	printf '%s\n' "$row"
done
echo
if [ "$run" -gt 0 ]; then
	echo "kill rate: $killed/$run ($((100 * killed / run))%), survived: $survived, skipped: $skipped"
else
	echo "no mutant run (skipped: $skipped)"
fi
exit 0
