#!/usr/bin/env python3
"""A CRM's side of callfleet's XML-RPC API, with Python's standard library only.

Usage:
  crm_client.py URL all EXT1 EXT2 DEV1 DEV2 QUEUE EMPTY_QUEUE
      drives every method (and the faults of bad calls) and prints one JSON object:
      step name -> result, or {"fault": code, "message": text}
  crm_client.py URL call METHOD [JSON_PARAM ...]
      one call; each parameter is JSON (e.g. '"1001"', 'true', '3', 'null'); prints the
      result or the fault as JSON

URL is the node's base, e.g. http://127.0.0.1:8080. With CALLFLEET_TOKEN set, the token is
sent as the HTTP Basic password, as a CRM would: http://crm:TOKEN@host:port/RPC2.
"""

import http.client
import json
import os
import sys
import urllib.parse
import xmlrpc.client


def endpoint(base):
    token = os.environ.get("CALLFLEET_TOKEN")
    parts = urllib.parse.urlsplit(base)
    netloc = parts.netloc
    if token:
        netloc = "crm:%s@%s" % (urllib.parse.quote(token, safe=""), netloc)
    return urllib.parse.urlunsplit((parts.scheme, netloc, "/RPC2", "", ""))


def proxy(base):
    # allow_none: agent.setDailyLimit(ext, None) clears the limit.
    return xmlrpc.client.ServerProxy(endpoint(base), allow_none=True)


def attempt(fn, *args):
    try:
        return fn(*args)
    except xmlrpc.client.Fault as fault:
        return {"fault": fault.faultCode, "message": fault.faultString}


def raw_post(base, body):
    """Posts bytes that are not a valid call; returns the fault the node answers with."""
    parts = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    headers = {"Content-Type": "text/xml"}
    token = os.environ.get("CALLFLEET_TOKEN")
    if token:
        headers["Authorization"] = "Bearer " + token
    try:
        conn.request("POST", "/RPC2", body=body, headers=headers)
        response = conn.getresponse()
        text = response.read()
    finally:
        conn.close()
    if response.status != 200:
        return {"http": response.status}
    try:
        return xmlrpc.client.loads(text)[0][0]
    except xmlrpc.client.Fault as fault:
        return {"fault": fault.faultCode, "message": fault.faultString}


def run_all(base, ext1, ext2, dev1, dev2, queue, empty_queue):
    s = proxy(base)
    r = {}
    r["listMethods"] = attempt(s.system.listMethods)
    r["queue.list"] = attempt(s.queue.list)
    r["login1"] = attempt(s.agent.login, ext1, dev1)
    r["login2"] = attempt(s.agent.login, ext2, dev2)
    r["status1"] = attempt(s.agent.status, ext1)
    r["pause1"] = attempt(s.agent.pause, ext1, True)
    r["stats.paused"] = attempt(s.queue.stats, queue)
    r["unpause1"] = attempt(s.agent.pause, ext1, False)
    r["stats"] = attempt(s.queue.stats, queue)
    r["setTier"] = attempt(s.agent.setTier, ext2, queue, 2)
    r["status2.tier"] = attempt(s.agent.status, ext2)
    r["setTier.back"] = attempt(s.agent.setTier, ext2, queue, 0)
    r["setDailyLimit"] = attempt(s.agent.setDailyLimit, ext1, 5)
    r["status1.limit"] = attempt(s.agent.status, ext1)
    r["clearDailyLimit"] = attempt(s.agent.setDailyLimit, ext1, None)
    r["status1.nolimit"] = attempt(s.agent.status, ext1)
    r["sale1"] = attempt(s.agent.recordSale, ext1)
    r["sale2"] = attempt(s.agent.recordSale, ext1)
    r["vip.add"] = attempt(s.vip.add, "+4930999", queue)
    r["vip.add.again"] = attempt(s.vip.add, "+4930999", queue)
    r["vip.remove"] = attempt(s.vip.remove, "+4930999", queue)
    r["vip.remove.again"] = attempt(s.vip.remove, "+4930999", queue)
    r["department.set"] = attempt(s.department.set, "front", [queue])
    r["department.list"] = attempt(s.department.list)
    r["department.remove"] = attempt(s.department.remove, "front")
    r["call.list"] = attempt(s.call.list)
    r["logout2"] = attempt(s.agent.logout, ext2)
    r["status2.out"] = attempt(s.agent.status, ext2)
    r["login2.again"] = attempt(s.agent.login, ext2, dev2)
    # Bad calls: each a fault with its stable code.
    r["f.arity"] = attempt(s.agent.status)
    r["status1.int"] = attempt(s.agent.status, int(ext1))
    r["f.type.ext"] = attempt(s.agent.status, 1001.5)
    r["f.type.paused"] = attempt(s.agent.pause, ext1, "yes")
    r["f.tier.range"] = attempt(s.agent.setTier, ext1, queue, -1)
    r["f.limit.type"] = attempt(s.agent.setDailyLimit, ext1, "5")
    r["f.unknown.agent"] = attempt(s.agent.status, "9999")
    r["f.unknown.queue"] = attempt(s.queue.stats, "no-such-queue")
    r["f.unknown.device"] = attempt(s.agent.login, ext1, "9999")
    r["f.not.member"] = attempt(s.agent.setTier, ext1, empty_queue, 1)
    r["f.unknown.method"] = attempt(s.queue.drop, queue)
    r["f.malformed"] = raw_post(base, b"<methodCall><methodName>queue.list")
    r["f.not.utf8"] = raw_post(base, b"\xff\xfe<methodCall/>")
    return r


def main(argv):
    if len(argv) >= 3 and argv[2] == "all" and len(argv) == 9:
        result = run_all(argv[1], *argv[3:9])
    elif len(argv) >= 4 and argv[2] == "call":
        method = proxy(argv[1])
        for part in argv[3].split("."):
            method = getattr(method, part)
        params = [json.loads(p) for p in argv[4:]]
        result = attempt(method, *params)
    else:
        sys.stderr.write(__doc__)
        return 2
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
