#!/usr/bin/env python3
"""Checks, from inside the agent container, that nothing leaves the pod around the ChronoGuard sidecar.

    kubectl exec -i POD -c agent -- python3 - < deploy/check-egress.py

Standard library only; run as the agent's user (not the sidecar's). It tries what a tool that ignores
the proxy variables would do and says, per attempt, whether the sidecar took it or the rules dropped it:

  tcp      a direct HTTP connection to an address no name was resolved for: the sidecar must answer it
           (403 with X-ChronoGuard-Decision), no origin may
  udp      a datagram to port 443 (QUIC) and to another port: the rules must refuse to send it
  dns      a TXT question (a name carrying data) over UDP and TCP to port 53 of an address with no
           resolver, and to the resolver in /etc/resolv.conf: the DNS guard must answer it, refused
  icmp     an echo request: refused to send
  tcp6     a direct IPv6 connection: taken by the sidecar (Transparent:Listen6) or refused to send

The default addresses are documentation ranges (RFC 5737, RFC 3849) that no one answers, so an
attempt that was neither taken nor refused shows up as a timeout and fails. Exit status 0 when every
attempt passed, 1 otherwise.
"""

import argparse
import errno
import os
import random
import socket
import struct
import sys

results = []


def report(ok, what, detail):
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'}  {what:<34} {detail}", flush=True)


def refused_to_send(e):
    # EPERM: a DROP in the OUTPUT chain; no route: nothing can leave that way either.
    # EHOSTUNREACH/EACCES: the rules refused a TCP connect (admin-prohibited).
    return isinstance(e, PermissionError) or getattr(e, "errno", None) in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.EACCES)


def check_tcp(family, host, port, timeout, what, may_drop):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
    except OSError as e:
        if refused_to_send(e):
            report(may_drop, what, f"refused to send ({os.strerror(e.errno) if e.errno else e})"
                   + ("" if may_drop else ": expected the sidecar to take it"))
        elif isinstance(e, (socket.timeout, TimeoutError)):
            report(False, what, "connect timed out: the SYN was neither redirected nor dropped")
        else:
            report(False, what, f"{e}: not taken by the sidecar (is it running and are the rules in place?)")
        s.close()
        return
    data = b""
    try:
        authority = f"[{host}]" if ":" in host else host
        s.sendall(f"GET / HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n".encode())
        while len(data) < 8192:
            part = s.recv(8192)
            if not part:
                break
            data += part
    except (ConnectionResetError, socket.timeout, TimeoutError) as e:
        if not data:
            report(False, what, f"connected, then {type(e).__name__} with no answer: cannot tell who took it")
            s.close()
            return
    finally:
        s.close()
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    fields = {}
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        fields[k.strip().lower()] = v.strip()
    status = head.split("\r\n", 1)[0]
    if "x-chronoguard-decision" in fields:
        code = status.split(" ")[1] if status.count(" ") else status
        report(True, what, f"taken by the sidecar: {code} {fields['x-chronoguard-decision']} {fields.get('x-chronoguard-reason', '')}".rstrip())
    else:
        report(False, what, f"answered without the sidecar: {status or 'no HTTP answer'}")


def check_udp(family, host, port, what):
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        s.sendto(b"\xc0\x00\x00\x00\x01" + os.urandom(32), (host, port))  # a QUIC long-header start
        report(False, what, "datagram sent: it may have left the pod")
    except OSError as e:
        report(refused_to_send(e), what, f"refused to send ({os.strerror(e.errno)})")
    finally:
        s.close()


def dns_query(name, qtype):
    qid = random.randrange(65536)
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return qid, q + b"\x00" + struct.pack("!HH", qtype, 1)


def check_dns(server, tcp, timeout, what):
    name = f"{os.urandom(8).hex()}.chronoguard-check.example.com"
    qid, q = dns_query(name, 16)  # TXT
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        if tcp:
            s.connect((server, 53))
            s.sendall(struct.pack("!H", len(q)) + q)
            answer = b""
            while len(answer) < 2 or len(answer) < 2 + struct.unpack("!H", answer[:2])[0]:
                part = s.recv(65537)
                if not part:
                    break
                answer += part
            answer = answer[2:]
        else:
            s.sendto(q, (server, 53))
            answer = s.recv(65535)
    except OSError as e:
        if refused_to_send(e):
            report(True, what, f"refused to send ({os.strerror(e.errno)}): no resolver is reachable but the guard")
        elif isinstance(e, (socket.timeout, TimeoutError)):
            report(False, what, "no answer: the question was neither sent to the guard nor refused")
        else:
            report(False, what, f"{e}: port 53 is not taken by the DNS guard (is it running?)")
        return
    finally:
        s.close()
    if len(answer) < 12 or struct.unpack("!H", answer[:2])[0] != qid:
        report(False, what, "an answer that is not for this question")
        return
    flags, _, ancount = struct.unpack("!HHH", answer[2:8])
    rcode = flags & 0x0F
    names = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}
    if rcode in (3, 5) and ancount == 0:
        report(True, what, f"refused by the DNS guard ({names[rcode]})")
    else:
        report(False, what, f"answered {names.get(rcode, rcode)} with {ancount} records: a TXT question got through")


def check_icmp(host, what):
    s = None
    for kind in (socket.SOCK_DGRAM, socket.SOCK_RAW):  # a ping socket, else raw (needs NET_RAW)
        try:
            s = socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP)
            break
        except OSError as e:
            error = e
    if s is None:
        # No ping socket for this group (net.ipv4.ping_group_range) and no NET_RAW: it cannot send ICMP anyway.
        report(True, what, f"cannot open an ICMP socket ({os.strerror(error.errno)}): nothing to send with")
        return
    try:
        s.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, 1) + b"chronoguard", (host, 0))
        report(False, what, "echo request sent: it may have left the pod")
    except OSError as e:
        report(refused_to_send(e), what, f"refused to send ({os.strerror(e.errno)})")
    finally:
        s.close()


def resolv_conf_nameserver():
    try:
        with open("/etc/resolv.conf") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    return parts[1]
    except OSError:
        pass
    return None


def main():
    p = argparse.ArgumentParser(description="Check that nothing leaves the pod around the ChronoGuard sidecar.")
    p.add_argument("--ipv4", default="192.0.2.1", help="an address no name resolves to (default 192.0.2.1)")
    p.add_argument("--ipv6", default="2001:db8::1", help="the same for IPv6 (default 2001:db8::1)")
    p.add_argument("--dns", default="192.0.2.53", help="an address with no resolver (default 192.0.2.53)")
    p.add_argument("--listen6", action="store_true", help="Transparent:Listen6 is set: IPv6 TCP must be taken, not dropped")
    p.add_argument("--timeout", type=float, default=3.0)
    a = p.parse_args()

    check_tcp(socket.AF_INET, a.ipv4, 80, a.timeout, f"tcp {a.ipv4}:80", may_drop=False)
    check_udp(socket.AF_INET, a.ipv4, 443, f"udp {a.ipv4}:443 (QUIC)")
    check_udp(socket.AF_INET, a.ipv4, 9999, f"udp {a.ipv4}:9999")
    check_dns(a.dns, False, a.timeout, f"dns TXT udp {a.dns}:53")
    check_dns(a.dns, True, a.timeout, f"dns TXT tcp {a.dns}:53")
    system = resolv_conf_nameserver()
    if system:
        check_dns(system, False, a.timeout, f"dns TXT udp {system}:53 (resolv.conf)")
    check_icmp(a.ipv4, f"icmp echo {a.ipv4}")
    check_tcp(socket.AF_INET6, a.ipv6, 80, a.timeout, f"tcp6 [{a.ipv6}]:80", may_drop=not a.listen6)
    check_udp(socket.AF_INET6, a.ipv6, 443, f"udp6 [{a.ipv6}]:443 (QUIC)")

    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
