#!/usr/bin/env python3
"""A complete example client of labsync's request API (docs/webapp.md), standard library only.

Copy it into your web app, or run it:

    export LABSYNC_TOKEN=...            # never on the command line
    python3 labsync_client.py --url http://127.0.0.1:8080 templates
    python3 labsync_client.py --url ... request --request-id order-1234 --template k8s \
        --name-prefix k8s --owner alice@example.com --ttl 4h --guestinfo guestinfo.student=Alice --wait
    python3 labsync_client.py --url ... request --template duo --name-prefix demo \
        --owner a@example.com --ttl 2h --wait    # request id made up (and printed) for you
    python3 labsync_client.py --url ... get k8s-1a2b3c
    python3 labsync_client.py --url ... extend k8s-1a2b3c --by 1h
    python3 labsync_client.py --url ... delete k8s-1a2b3c

Exit codes: 0 done, 1 the API said no (the error and its diagnostics on stderr) or could not
be reached, 2 bad usage, 3 the lab failed or did not become ready in time.

Idempotency, the one thing to get right: every lab request carries a `request_id` that you
choose. Derive it from your web app's own order (`"order-%d" % order.id`): when a call times out
you cannot know whether labsync wrote the request, so you send the same call again, and labsync
answers with the same lab (200 instead of 201), never a second one.
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
import uuid


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
        """Worth trying the same call again later: 429 (over the client's rate) and 503 (the
        watch has not looked at vCenter yet, or cannot read or write its files) are answered
        before labsync changes anything. labsync sends no Retry-After; a proxy in front of it
        may, and `retry_after` has it then."""
        return self.status in (429, 503)


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

    def _call(self, method, path, body=None, retries=4, idempotent=True):
        """One call, its JSON answer (None for 204). 429 and 503 are tried again with backoff:
        labsync refuses those before it changes anything. 502 and 504 come from a proxy between
        you and labsync; the call may have been done, so they are tried again only when a repeat
        changes nothing more (`idempotent`: reads, a lab request with its request_id, extend
        `until`). Network errors and timeouts are raised as they are (urllib.error.URLError,
        TimeoutError): send the same call again yourself, it is just as safe."""
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
                if not isinstance(answer, dict):
                    answer = {}
                err = ApiError(e.code, answer, e.headers.get("Retry-After"))
                again = err.retryable or (idempotent and e.code in (502, 504))
                if not again or attempt == retries:
                    raise err from None
                wait = float(err.retry_after) if (err.retry_after or "").isdigit() else delay
                time.sleep(wait)
                delay = min(delay * 2, 10)

    # --- what can be requested -----------------------------------------------------------

    def templates(self):
        """What can be requested: {template: {vms (their roles), clone, max_labs, pool_ready}}."""
        return self._call("GET", "/api/v1/templates")["templates"]

    def pools(self):
        """Each warm pool now: [{template, target, ready, booting, claimed, ...}]."""
        return self._call("GET", "/api/v1/pools")["pools"]

    # --- labs ----------------------------------------------------------------------------

    def request_lab(self, request_id, template, name=None, name_prefix=None, owner=None,
                    ttl=None, expires_at=None, labels=None, guestinfo=None):
        """Asks for a lab: `name`, or `name_prefix` (the lab is then `<prefix>-<6 hex>`, the
        same for the same request_id); `ttl` (`4h`) or `expires_at` (RFC 3339); `labels` and
        `guestinfo` are dicts of strings. Derive `request_id` from your own order id: after a
        timeout, send the same call again (same body, same token) and you get the same lab,
        never a second one. Answers {name, request_id, state, reason, request_file}: `state` is
        `claimed` (a warm pool's spare will serve it), `queued` (with the `reason`) or
        `provisioning` for a new request; for a repeat, the lab's state now.
        Raises ApiError: 422 with `diagnostics` (an unknown template, a bad ttl ...), 409 (the
        name is taken, or the request_id was used for another body)."""
        body = {"request_id": request_id, "template": template}
        for key, value in (("name", name), ("name_prefix", name_prefix), ("owner", owner),
                           ("ttl", ttl), ("expires_at", expires_at), ("labels", labels),
                           ("guestinfo", guestinfo)):
            if value:
                body[key] = value
        return self._call("POST", "/api/v1/labs", body)

    def list_labs(self):
        """Every lab the watch knows (not only this client's), as get_lab gives one."""
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
        """More time: `by` a duration from the lab's current end (`1h`), or `until` a new end
        (RFC 3339). Never shortens a lab (422). Answers {name, expires_at}."""
        if bool(by) == bool(until):
            raise ValueError("give exactly one of by and until")
        body = {"by": by} if by else {"until": until}
        # `by` twice is twice the time: not repeated after a proxy's 502/504.
        return self._call("POST", "/api/v1/labs/%s/extend" % urllib.parse.quote(name, safe=""),
                          body, idempotent=until is not None)

    def delete(self, name):
        """Gives the lab back: its request file then asks for nothing and the watch destroys the
        lab at once. The request_id stays taken (asking again with it is a 409). Once the watch
        has looked again, the lab is unknown to the API: a repeat of this call is a 404."""
        self._call("DELETE", "/api/v1/labs/" + urllib.parse.quote(name, safe=""))

    def wait_ready(self, name, timeout=900, on_change=None):
        """Polls GET /api/v1/labs/{name} (every 0.25 s at first, then up to every 5 s) until the
        lab is `ready` (or `expiring`: ready, ending soon) and returns it, with its VMs and their
        IPs; raises LabFailed if it ends `failed`, `expired` or `removed`, or the time runs out.
        A refused request never gets here: request_lab raised ApiError (422 with diagnostics,
        409). Until the watch has looked after the request the lab is unknown (404): shown as
        `requested`. `on_change(lab)` is called whenever its state changes, for a progress
        display."""
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


def describe(diagnostic):
    """One of a 422's diagnostics in words, for the admin: `code: message at file:line:col`, then
    its help. The diagnostics are those `labsync plan` would show for the request file as it
    would have been written (`labs.d/api/<request_id>.yaml`)."""
    text = "%s: %s" % (diagnostic.get("code", "?"), diagnostic.get("message", ""))
    labels = diagnostic.get("labels") or []
    if labels:
        first = labels[0]
        text += " at %s:%s:%s" % (first.get("file"), first.get("line"), first.get("column"))
        if first.get("label"):
            text += " (%s)" % first["label"]
    if diagnostic.get("help"):
        text += "\n    help: %s" % diagnostic["help"]
    return text


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
    r.add_argument("--request-id", help="your order's id (default: a new one, printed, to repeat "
                   "the request safely)")
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
            request_id = args.request_id
            if not request_id:
                request_id = "cli-" + uuid.uuid4().hex[:16]
                print("request id: %s (give --request-id %s to repeat this request safely)"
                      % (request_id, request_id), file=sys.stderr)
            accepted = api.request_lab(
                request_id, args.template, name=args.name, name_prefix=args.name_prefix,
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
            print("  " + describe(d), file=sys.stderr)
        return 1
    except LabFailed as err:
        print("error: %s" % err, file=sys.stderr)
        return 3
    except (urllib.error.URLError, OSError) as err:
        # Connection refused, a name that does not resolve, a certificate not trusted, a timeout.
        reason = getattr(err, "reason", err)
        print("error: cannot reach labsync at %s: %s" % (args.url, reason), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
