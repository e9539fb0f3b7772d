#!/usr/bin/env python3
"""A complete example client of labsync's request API (docs/webapp.md), standard library only.

Copy it into your web app, or run it:

    export LABSYNC_TOKEN=...            # never on the command line
    python3 labsync_client.py --url http://127.0.0.1:8080 templates
    python3 labsync_client.py --url ... request --request-id order-1234 --template k8s \
        --name-prefix k8s --owner alice@example.com --ttl 4h --guestinfo guestinfo.student=Alice --wait
    python3 labsync_client.py --url ... get k8s-1a2b3c
    python3 labsync_client.py --url ... extend k8s-1a2b3c --by 1h
    python3 labsync_client.py --url ... delete k8s-1a2b3c

Exit codes: 0 done, 1 the API said no (the error and its diagnostics on stderr), 2 bad usage,
3 the lab failed or did not become ready in time.
"""

import argparse
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


class ApiError(Exception):
    """A 4xx or 5xx answer: `status`, the API's `error` kind, `message` and, for 422, the
    `diagnostics` the labs files would show (each with its place in the request file)."""

    def __init__(self, status, body, retry_after=None):
        self.status = status
        self.error = body.get("error", "http_%d" % status)
        self.message = body.get("message", "")
        self.diagnostics = body.get("diagnostics", [])
        self.retry_after = retry_after
        super().__init__("%d %s: %s" % (status, self.error, self.message))

    @property
    def retryable(self):
        """Worth trying again later (with the same request_id): rate limited, or the watch is
        not ready to answer yet."""
        return self.status in (429, 502, 503, 504)


class LabFailed(Exception):
    """The lab ended `failed` (its `reason` says why), or was not ready in time."""

    def __init__(self, lab, message):
        self.lab = lab
        super().__init__(message)


class Labsync:
    """labsync's request API at `base_url` with a bearer token (scope read, request)."""

    def __init__(self, base_url, token, cafile=None, timeout=30):
        self.base = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=cafile) if cafile else None

    def _call(self, method, path, body=None, retries=4):
        """One call; 429 and 503 are tried again with backoff, which is safe because every
        request that changes something carries an idempotency key (the request_id) or is
        idempotent by nature (DELETE, extend `until`)."""
        data = None if body is None else json.dumps(body).encode()
        delay = 0.5
        for attempt in range(retries + 1):
            req = urllib.request.Request(self.base + path, data=data, method=method)
            req.add_header("Authorization", "Bearer " + self.token)
            req.add_header("Accept", "application/json")
            if data is not None:
                req.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as res:
                    raw = res.read()
                    return json.loads(raw) if raw else None
            except urllib.error.HTTPError as e:
                raw = e.read()
                try:
                    answer = json.loads(raw) if raw else {}
                except ValueError:
                    answer = {"message": raw.decode("utf-8", "replace")[:200]}
                err = ApiError(e.code, answer, e.headers.get("Retry-After"))
                if not err.retryable or attempt == retries:
                    raise err from None
                wait = float(err.retry_after) if (err.retry_after or "").isdigit() else delay
                time.sleep(wait)
                delay = min(delay * 2, 10)

    # --- what can be requested -----------------------------------------------------------

    def templates(self):
        """{name: {vms, clone mode, max_labs, pool size, ...}}."""
        return self._call("GET", "/api/v1/templates")["templates"]

    def pools(self):
        """Each warm pool now: template, ready, booting, claimed, target."""
        return self._call("GET", "/api/v1/pools")["pools"]

    # --- labs ----------------------------------------------------------------------------

    def request_lab(self, request_id, template, name=None, name_prefix=None, owner=None,
                    ttl=None, expires_at=None, labels=None, guestinfo=None):
        """Asks for a lab. Derive `request_id` from your own order id: after a timeout, send
        the same call again and you get the same lab, never a second one. Answers
        {name, request_id, state (claimed | queued | provisioning), reason, request_file}."""
        body = {"request_id": request_id, "template": template}
        for key, value in (("name", name), ("name_prefix", name_prefix), ("owner", owner),
                           ("ttl", ttl), ("expires_at", expires_at), ("labels", labels),
                           ("guestinfo", guestinfo)):
            if value:
                body[key] = value
        return self._call("POST", "/api/v1/labs", body)

    def list_labs(self):
        return self._call("GET", "/api/v1/labs")["labs"]

    def get_lab(self, name):
        """The lab (state, reason, VMs with IPs, expires), or None if labsync does not know it
        (yet: a lab appears once the watch has looked after its request)."""
        try:
            return self._call("GET", "/api/v1/labs/" + urllib.parse.quote(name, safe=""))
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def extend(self, name, by=None, until=None):
        body = {"by": by} if by else {"until": until}
        return self._call("POST", "/api/v1/labs/%s/extend" % urllib.parse.quote(name, safe=""), body)

    def delete(self, name):
        """Gives the lab back: the watch destroys it at once. The request_id stays taken."""
        self._call("DELETE", "/api/v1/labs/" + urllib.parse.quote(name, safe=""))

    def wait_ready(self, name, timeout=900, on_change=None):
        """Polls until the lab is `ready` (or `expiring`) and returns it; raises LabFailed if it
        fails or the time runs out. `on_change(lab)` is called whenever its state changes, for a
        progress display."""
        end = time.monotonic() + timeout
        delay, last = 0.25, None
        while time.monotonic() < end:
            lab = self.get_lab(name)
            state = lab["state"] if lab else "requested"
            if state != last and on_change:
                on_change(lab or {"name": name, "state": state})
            last = state
            if state in ("ready", "expiring"):
                return lab
            if state in ("failed", "expired", "removed"):
                raise LabFailed(lab, "%s is %s: %s" % (name, state, lab.get("reason") or "no reason given"))
            time.sleep(delay)
            delay = min(delay * 1.5, 5)
        raise LabFailed(None, "%s was not ready after %d s" % (name, timeout))


def _pairs(items):
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit("expected KEY=VALUE, got %r" % item)
        out[key] = value
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description="labsync request API client (token from LABSYNC_TOKEN)")
    p.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8080")
    p.add_argument("--cafile", help="PEM file of the CA that signed the watch's --tls-cert")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("templates")
    sub.add_parser("pools")
    sub.add_parser("list")
    g = sub.add_parser("get")
    g.add_argument("name")
    r = sub.add_parser("request")
    r.add_argument("--request-id", required=True)
    r.add_argument("--template", required=True)
    r.add_argument("--name")
    r.add_argument("--name-prefix")
    r.add_argument("--owner")
    r.add_argument("--ttl")
    r.add_argument("--expires-at")
    r.add_argument("--label", action="append", metavar="KEY=VALUE")
    r.add_argument("--guestinfo", action="append", metavar="KEY=VALUE")
    r.add_argument("--wait", action="store_true", help="wait until it is ready")
    r.add_argument("--timeout", type=int, default=900)
    e = sub.add_parser("extend")
    e.add_argument("name")
    e.add_argument("--by")
    e.add_argument("--until")
    d = sub.add_parser("delete")
    d.add_argument("name")
    args = p.parse_args(argv)

    token = os.environ.get("LABSYNC_TOKEN")
    if not token:
        print("error: set LABSYNC_TOKEN to your API token", file=sys.stderr)
        return 2
    api = Labsync(args.url, token, cafile=args.cafile)
    show = lambda v: print(json.dumps(v, indent=2, sort_keys=True))
    try:
        if args.command == "templates":
            show(api.templates())
        elif args.command == "pools":
            show(api.pools())
        elif args.command == "list":
            show(api.list_labs())
        elif args.command == "get":
            lab = api.get_lab(args.name)
            if lab is None:
                print("error: no lab %s" % args.name, file=sys.stderr)
                return 1
            show(lab)
        elif args.command == "request":
            accepted = api.request_lab(
                args.request_id, args.template, name=args.name, name_prefix=args.name_prefix,
                owner=args.owner, ttl=args.ttl, expires_at=args.expires_at,
                labels=_pairs(args.label), guestinfo=_pairs(args.guestinfo))
            if not args.wait:
                show(accepted)
                return 0
            progress = lambda lab: print("%s: %s %s" % (lab["name"], lab["state"], lab.get("reason") or ""),
                                         file=sys.stderr)
            show(api.wait_ready(accepted["name"], timeout=args.timeout, on_change=progress))
        elif args.command == "extend":
            if bool(args.by) == bool(args.until):
                print("error: give --by DURATION or --until RFC3339", file=sys.stderr)
                return 2
            show(api.extend(args.name, by=args.by, until=args.until))
        elif args.command == "delete":
            api.delete(args.name)
    except ApiError as err:
        print("error: %s" % err, file=sys.stderr)
        for d in err.diagnostics:
            print("  %s" % json.dumps(d, sort_keys=True), file=sys.stderr)
        return 1
    except LabFailed as err:
        print("error: %s" % err, file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
