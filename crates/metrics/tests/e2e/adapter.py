#!/usr/bin/env python3
"""A tiny custom metrics adapter serving custom.metrics.k8s.io at v1beta1 ONLY, the way
many adapters still do, for the kube-lab end-to-end test (custom-metrics-v1beta1.sh).

usage: adapter.py PORT CERT KEY VALUES_JSON [REQUEST_LOG]

VALUES_JSON maps metric name -> {pod name -> quantity}, re-read on every request, e.g.
  {"test_metric": {"test-app-5d4f-abcde": "200", "test-app-5d4f-fghij": "200"}}

Served over HTTPS on 127.0.0.1:PORT (the API server's aggregation layer proxies to it):
  GET /apis/custom.metrics.k8s.io/v1beta1                       APIResourceList
  GET /apis/custom.metrics.k8s.io/v1beta1/namespaces/NS/pods/*/M MetricValueList (v1beta1:
      metricName/selector at the top of each item, the window as `window`)
  anything else (v1beta2 included)                             404 Status
REQUEST_LOG, when given, gets one line per request: the X-Remote-User the aggregation
layer sends (who asked: podscale's user, or the HPA controller's), then the path.
Client certificates are not checked: this is a loopback test fixture, not an adapter.
"""
import datetime
import json
import ssl
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GROUP = "custom.metrics.k8s.io"
VERSION = "v1beta1"


def status_404(message):
    return 404, {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": "NotFound", "details": {}, "code": 404,
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("adapter: " + (fmt % args) + "\n")

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if LOG:
            with open(LOG, "a") as f:
                f.write(f"{self.headers.get('X-Remote-User', '-')} {self.path}\n")
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
        if parts == ["apis", GROUP, VERSION]:
            return self.answer(200, {
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{GROUP}/{VERSION}",
                "resources": [{"name": "pods/test_metric", "singularName": "", "namespaced": True,
                               "kind": "MetricValueList", "verbs": ["get"]}],
            })
        # /apis/GROUP/VERSION/namespaces/NS/pods/*/METRIC
        if (len(parts) == 8 and parts[:3] == ["apis", GROUP, VERSION] and parts[3] == "namespaces"
                and parts[5] == "pods" and parts[6] == "*"):
            namespace, metric = parts[4], parts[7]
            with open(VALUES) as f:
                values = json.load(f).get(metric)
            if values is None:
                return self.answer(*status_404(f"the server could not find the metric {metric} for pods"))
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            items = [{
                "describedObject": {"kind": "Pod", "namespace": namespace, "name": pod, "apiVersion": "/v1"},
                "metricName": metric, "timestamp": now, "window": 60, "value": value, "selector": None,
            } for pod, value in sorted(values.items())]
            return self.answer(200, {
                "kind": "MetricValueList", "apiVersion": f"{GROUP}/{VERSION}", "metadata": {},
                "items": items,
            })
        return self.answer(*status_404("the server could not find the requested resource"))


if __name__ == "__main__":
    port, cert, key, VALUES = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    LOG = sys.argv[5] if len(sys.argv) > 5 else None
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"adapter: serving {GROUP}/{VERSION} on https://127.0.0.1:{port}", flush=True)
    server.serve_forever()
