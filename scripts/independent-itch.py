#!/usr/bin/env python3
"""Synthetic NASDAQ TotalView-ITCH 5.0 day in BinaryFILE framing, written from the spec.

Independent of pinbook's own generator: use it to cross-check pinbook (and other ITCH
books) on a stream pinbook's authors did not shape.

Output: each message is preceded by its length as a 2-byte big-endian integer. The day is
    S 'O' (start of messages), R for locates 1..N, S 'Q' (start of market hours),
    order messages (A, E, X, D, U), S 'C' (end of messages).
--messages counts every message written, so the file holds exactly that many.

Order flow. Warm-up: about 90% adds (the rest the steady mix) until --live orders rest,
symbols picked uniformly. Steady state: about 34% add, 30% delete, 13% cancel, 13%
execute, 10% replace, the add share nudged so the live count stays near --live.
Cancels, executions, deletes and replaces act on an order picked uniformly among all live
orders of the whole stream (a Python list with swap-remove). Cancels are partial except
about 10% that cancel every remaining share; executions likewise with about 30% full.
Replaces keep the side, take a new reference, new shares, and a new price (70%) or the
old one (30%). Order references start at 1 and strictly increase; timestamps strictly
increase; match numbers increase.

Prices: each symbol has a mid (about 3% of symbols below $1, the rest log-uniform
$5..$800) whose log moves as a slow mean-reverting random walk (within about +-0.1%).
A bid rests at mid * (1 - f) and an ask at mid * (1 + f), f = 0.15% + 8% * u^2 (u
uniform), so books are deep (a side of a $100 name spans about 800 cent ticks, an $800
name about 6,000) and thickest near the touch. Prices of $1 and above are in cent ticks
(multiples of 100 in ITCH's 4 implied decimals), below $1 in 1/100-cent ticks; bids
round down, asks up. The walk stays inside the spread floor, so books are crossed only
by transient crossing adds (see CROSS_ADD): about 1 in 2,000 steady-state adds is priced
through the far side, kept out of the uniform pick, and fully executed or deleted 1..40
order messages later.

Deterministic for a given --seed (only random.Random.random() is used).
Standard library only.
"""
import argparse
import heapq
import math
import random
import struct
import sys

NS_PER_S = 1_000_000_000
T_START_OF_MESSAGES = 3 * 3600 * NS_PER_S  # 03:00
T_MARKET_OPEN = (9 * 3600 + 30 * 60) * NS_PER_S  # 09:30
T_MARKET_CLOSE = 16 * 3600 * NS_PER_S  # 16:00

# Framed layouts: u16 length, then the message. Header: type(c) locate(H) tracking(H)
# timestamp as 6 bytes = high 16 bits (H) + low 32 bits (I).
HDR = ">HcHHHI"
S_SYS = struct.Struct(HDR + "c")  # 12
S_DIR = struct.Struct(HDR + "8sccIcc2scccccIc")  # 39
S_ADD = struct.Struct(HDR + "QcI8sI")  # 36
S_EXE = struct.Struct(HDR + "QIQ")  # 31
S_CAN = struct.Struct(HDR + "QI")  # 23
S_DEL = struct.Struct(HDR + "Q")  # 19
S_REP = struct.Struct(HDR + "QQII")  # 35
for _s, _len in ((S_SYS, 12), (S_DIR, 39), (S_ADD, 36), (S_EXE, 31), (S_CAN, 23),
                 (S_DEL, 19), (S_REP, 35)):
    assert _s.size == 2 + _len, (_s.format, _s.size, _len)

SPREAD_FLOOR = 0.0015  # f's minimum: 15 bp either side of the mid
SPREAD_RANGE = 0.08  # f reaches 8.15% at most
MID_REVERT = 1.0 / 2000  # per add of the symbol
MID_STEP = 2e-5  # uniform step's half-width (log mid), per add of the symbol
# Transient crosses: after warm-up this share of adds is priced through the far side's
# spread floor (bids up to mid * (1 + floor + 0.05%..0.35%), asks mirrored), kept out of
# the uniform pick, and removed 1..40 order messages later (full execution or delete).
CROSS_ADD = 0.0005
FULL_CANCEL = 0.10
FULL_EXEC = 0.30
SAME_PRICE_REPLACE = 0.30

# Steady mix (cumulative thresholds are built from these).
P_ADD, P_DEL, P_CAN, P_EXE, P_REP = 0.34, 0.30, 0.13, 0.13, 0.10
WARMUP_ADD = 0.90


def symbol_names(n, rnd):
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    seen = set()
    out = []
    while len(out) < n:
        k = 2 + int(rnd() * 4)  # 2..5 letters
        name = "".join(letters[int(rnd() * 26)] for _ in range(k))
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--messages", type=int, default=5_000_000,
                    help="messages in the file, system events and directory included")
    ap.add_argument("--live", type=int, default=1_500_000,
                    help="resting orders to build up to and hold near")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True, help="output file ('-' for stdout)")
    a = ap.parse_args(argv)
    nsym = a.symbols
    if not 1 <= nsym <= 65535:
        ap.error("--symbols must be 1..65535")
    norders = a.messages - nsym - 3
    if norders < 0:
        ap.error(f"--messages must be at least symbols + 3 = {nsym + 3}")
    target = max(1, a.live)

    rng = random.Random(a.seed)
    R = rng.random
    floor, ceil, exp = math.floor, math.ceil, math.exp

    names = symbol_names(nsym, R)
    stock = [b""] + [s.ljust(8).encode("ascii") for s in names]  # by locate
    base = [0.0]
    for _ in range(nsym):
        if R() < 0.03:
            base.append(0.2 + 0.7 * R())  # sub-dollar
        else:
            base.append(5.0 * math.exp(R() * math.log(160.0)))  # $5..$800 log-uniform
    logdev = [0.0] * (nsym + 1)
    mid = base[:]

    out = sys.stdout.buffer if a.out == "-" else open(a.out, "wb", buffering=1 << 20)
    chunks = []
    push = chunks.append

    def flush():
        out.write(b"".join(chunks))
        chunks.clear()

    # Opening: start of messages, stock directory, start of market hours.
    ts = T_START_OF_MESSAGES
    push(S_SYS.pack(12, b"S", 0, 0, ts >> 32, ts & 0xFFFFFFFF, b"O"))
    cats = (b"Q", b"Q", b"G", b"S", b"N", b"P")
    for loc in range(1, nsym + 1):
        ts += 1000
        cat = cats[int(R() * len(cats))]
        tier = b"1" if base[loc] >= 50 else b"2"
        push(S_DIR.pack(39, b"R", loc, 0, ts >> 32, ts & 0xFFFFFFFF, stock[loc], cat, b"N",
                        100, b"N", b"C", b"Z ", b"P", b"N", b"N", tier, b"N", 0, b"N"))
    ts = T_MARKET_OPEN
    push(S_SYS.pack(12, b"S", 0, 0, ts >> 32, ts & 0xFFFFFFFF, b"Q"))

    # Live orders, parallel lists indexed by position; removal swaps the last one in.
    L_ref, L_loc, L_bid, L_sh, L_px = [], [], [], [], []
    next_ref = 1
    match = 1
    # ns between order messages: uniform on [1, 2*mean], strictly increasing.
    span = 2.0 * (T_MARKET_CLOSE - T_MARKET_OPEN) / max(1, norders)
    warm = True
    pending = []  # transient crossing orders: (due message index, ref, locate, shares)
    ncross = 0
    nA = nE = nX = nD = nU = 0
    s_add, s_exe, s_can, s_del, s_rep = S_ADD.pack, S_EXE.pack, S_CAN.pack, S_DEL.pack, S_REP.pack
    max_live = 0

    def draw_shares():
        u = R()
        if u < 0.60:
            return 100 * (1 + int(R() * R() * 10))  # 100..1000, mostly small
        if u < 0.80:
            return 1 + int(R() * 99)  # odd lot
        if u < 0.95:
            return 100 + int(R() * 4900)  # mixed lot
        return 100 * (10 + int(R() * 491))  # 1,000..50,000

    def draw_price(m, bid):
        u = R()
        f = SPREAD_FLOOR + SPREAD_RANGE * u * u
        if bid:
            p = m * (1.0 - f)
            if p >= 1.0:
                return 100 * floor(p * 100.0)
            return max(1, floor(p * 10000.0))
        p = m * (1.0 + f)
        if p >= 1.0:
            return 100 * ceil(p * 100.0)
        return ceil(p * 10000.0)

    for i in range(norders):
        ts += 1 + int(R() * span)
        hi, lo = ts >> 32, ts & 0xFFFFFFFF
        if pending and pending[0][0] <= i:
            _, ref, loc, sh = heapq.heappop(pending)
            if R() < 0.6:
                push(s_exe(31, b"E", loc, 0, hi, lo, ref, sh, match))
                match += 1
                nE += 1
            else:
                push(s_del(19, b"D", loc, 0, hi, lo, ref))
                nD += 1
            continue
        n = len(L_ref)
        if n > max_live:
            max_live = n
        if warm and n >= target:
            warm = False
        u = R()
        if warm:
            padd = WARMUP_ADD
        else:
            # Nudge the add share toward holding `target` live orders.
            padd = min(0.95, max(0.05, P_ADD + 2.0 * (target - n) / target))
        if n == 0 or u < padd:
            op = 0
        else:
            # Spread the rest over delete/cancel/execute/replace in the steady proportions.
            v = P_ADD + (u - padd) / (1.0 - padd) * (1.0 - P_ADD)
            if v < P_ADD + P_DEL:
                op = 2  # delete
            elif v < P_ADD + P_DEL + P_CAN:
                op = 3  # cancel
            elif v < P_ADD + P_DEL + P_CAN + P_EXE:
                op = 4  # execute
            else:
                op = 5  # replace

        if op == 0:
            loc = 1 + int(R() * nsym)
            x = logdev[loc] * (1.0 - MID_REVERT) + MID_STEP * (2.0 * R() - 1.0)
            logdev[loc] = x
            m = base[loc] * exp(x)
            mid[loc] = m
            bid = R() < 0.5
            sh = draw_shares()
            ref = next_ref
            next_ref += 1
            if not warm and R() < CROSS_ADD:
                g = SPREAD_FLOOR + 0.0005 + 0.003 * R()
                if bid:
                    p = m * (1.0 + g)
                    px = 100 * floor(p * 100.0) if p >= 1.0 else floor(p * 10000.0)
                else:
                    p = m * (1.0 - g)
                    px = 100 * ceil(p * 100.0) if p >= 1.0 else max(1, ceil(p * 10000.0))
                push(s_add(36, b"A", loc, 0, hi, lo, ref, b"B" if bid else b"S", sh, stock[loc], px))
                heapq.heappush(pending, (i + 1 + int(R() * 40), ref, loc, sh))
                nA += 1
                ncross += 1
                continue
            px = draw_price(m, bid)
            push(s_add(36, b"A", loc, 0, hi, lo, ref, b"B" if bid else b"S", sh, stock[loc], px))
            L_ref.append(ref); L_loc.append(loc); L_bid.append(bid); L_sh.append(sh); L_px.append(px)
            nA += 1
            if len(chunks) >= 65536:
                flush()
            continue

        k = int(R() * n)
        ref = L_ref[k]
        loc = L_loc[k]
        remove = False
        if op == 2:
            push(s_del(19, b"D", loc, 0, hi, lo, ref))
            remove = True
            nD += 1
        elif op == 3:
            sh = L_sh[k]
            if sh == 1 or R() < FULL_CANCEL:
                c = sh
                remove = True
            else:
                c = 1 + int(R() * (sh - 1))
                L_sh[k] = sh - c
            push(s_can(23, b"X", loc, 0, hi, lo, ref, c))
            nX += 1
        elif op == 4:
            sh = L_sh[k]
            if sh == 1 or R() < FULL_EXEC:
                c = sh
                remove = True
            else:
                c = 1 + int(R() * (sh - 1))
                L_sh[k] = sh - c
            push(s_exe(31, b"E", loc, 0, hi, lo, ref, c, match))
            match += 1
            nE += 1
        else:
            new = next_ref
            next_ref += 1
            sh = draw_shares()
            px = L_px[k] if R() < SAME_PRICE_REPLACE else draw_price(mid[loc], L_bid[k])
            push(s_rep(35, b"U", loc, 0, hi, lo, ref, new, sh, px))
            L_ref[k] = new; L_sh[k] = sh; L_px[k] = px
            nU += 1
        if remove:
            last = n - 1
            if k != last:
                L_ref[k] = L_ref[last]; L_loc[k] = L_loc[last]; L_bid[k] = L_bid[last]
                L_sh[k] = L_sh[last]; L_px[k] = L_px[last]
            L_ref.pop(); L_loc.pop(); L_bid.pop(); L_sh.pop(); L_px.pop()
        if len(chunks) >= 65536:
            flush()

    ts = max(ts + 1000, T_MARKET_CLOSE + 5 * 60 * NS_PER_S)
    push(S_SYS.pack(12, b"S", 0, 0, ts >> 32, ts & 0xFFFFFFFF, b"C"))
    flush()
    if out is not sys.stdout.buffer:
        out.close()
    print(f"{a.messages} messages: {nsym + 3} system/directory, A {nA}, D {nD}, X {nX}, "
          f"E {nE}, U {nU}; live at end {len(L_ref)} (max {max_live}); "
          f"last order ref {next_ref - 1}; transient crossing adds {ncross}", file=sys.stderr)


if __name__ == "__main__":
    main()
