"""A loopback fake of Amazon Bedrock's Converse API for the adapter tests (moto has none).

Every request is validated against the Converse input shape of the service model botocore
ships (data/bedrock-runtime/*/service-2.json, pinned in infra/requirements-botocore.txt), and
every response against its output shape, with botocore's own ParamValidator. The model id
picks the scenario (`fake.<scenario>`): each stop reason, throttling (once or always), a
5xx, a too-long input and a slow answer. GET /_log returns every exchange and its
validation, so a test can assert that all of them conformed.

    .venv/botocore/bin/python infra/bedrock_fake.py      # prints "PORT <n>" then serves
"""

import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore
import botocore.session
from botocore.validate import ParamValidator

SERVICE = botocore.session.get_session().get_service_model("bedrock-runtime")
CONVERSE = SERVICE.operation_model("Converse")
LOG = []
LOCK = threading.Lock()
COUNTS = {}


def check(params, shape):
    report = ParamValidator().validate(params, shape)
    return report.generate_report() if report.has_errors() else None


def answer(stop, text=None, tool_text=None, trace=None):
    content = []
    if text is not None:
        content.append({"text": text})
    if tool_text is not None:
        content.append(
            {"toolUse": {"toolUseId": "tooluse_1", "name": "write_draft", "input": {"text": tool_text}}}
        )
    body = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 120, "outputTokens": 30, "totalTokens": 150},
        "metrics": {"latencyMs": 42},
    }
    if trace is not None:
        body["trace"] = trace
    return body


GUARDRAIL_TRACE = {
    "guardrail": {
        "inputAssessment": {
            "gr-1": {
                "contentPolicy": {
                    "filters": [
                        {"type": "MISCONDUCT", "confidence": "HIGH", "action": "BLOCKED"}
                    ]
                }
            }
        },
        "actionReason": "Guardrail blocked.",
    }
}


def scenario(name, count):
    """(status, headers, body) for a scenario; `count` is the number of earlier calls."""
    ok = lambda body: (200, {}, body)
    error = lambda status, code, message, extra=None: (
        status,
        {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/", **(extra or {})},
        {"message": message},
    )
    if name == "tool-use":
        return ok(answer("tool_use", tool_text="Meet {{artist.name}}."))
    if name == "end-turn":
        return ok(answer("end_turn", text="Meet {{artist.name}}."))
    if name == "stop-sequence":
        return ok(answer("stop_sequence", text="Meet {{artist.name}}."))
    if name == "max-tokens":
        return ok(answer("max_tokens", tool_text="Meet {{artist"))
    if name == "guardrail":
        return ok(answer("guardrail_intervened", text="Sorry, the model cannot answer.", trace=GUARDRAIL_TRACE))
    if name == "content-filtered":
        return ok(answer("content_filtered", text=""))
    if name == "context-window":
        return ok(answer("model_context_window_exceeded", text=""))
    if name == "too-long":
        return error(400, "ValidationException", "Input is too long for requested model.")
    if name == "denied":
        return error(403, "AccessDeniedException", "You don't have access to the model with the specified model ID.")
    if name == "throttle-once" and count == 0:
        return error(429, "ThrottlingException", "Too many requests, please wait before trying again.")
    if name == "throttle-once":
        return ok(answer("tool_use", tool_text="Meet {{artist.name}}."))
    if name == "throttle-always":
        return error(429, "ThrottlingException", "Too many requests, please wait before trying again.", {"Retry-After": "7"})
    if name == "internal":
        return error(500, "InternalServerException", "The server encountered an internal error.")
    if name == "slow":
        time.sleep(3)
        return ok(answer("tool_use", tool_text="Meet {{artist.name}}."))
    return error(400, "ValidationException", f"unknown fake scenario {name!r}")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, headers, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_log":
            with LOCK:
                self.reply(200, {}, LOG)
        else:
            self.reply(404, {}, {"message": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        parts = self.path.split("/")
        if len(parts) != 4 or parts[1] != "model" or parts[3] != "converse":
            self.reply(404, {}, {"message": f"no such operation {self.path}"})
            return
        model_id = urllib.parse.unquote(parts[2])
        try:
            params = json.loads(raw or b"{}")
        except ValueError as e:
            params, request_error = {}, f"body is not JSON: {e}"
        else:
            request_error = None
        params["modelId"] = model_id
        request_error = request_error or check(params, CONVERSE.input_shape)
        name = model_id[len("fake."):] if model_id.startswith("fake.") else model_id
        with LOCK:
            count = COUNTS.get(name, 0)
            COUNTS[name] = count + 1
        if request_error:
            status, headers, body = 400, {"x-amzn-ErrorType": "ValidationException"}, {"message": request_error}
        else:
            status, headers, body = scenario(name, count)
        response_error = check(body, CONVERSE.output_shape) if status == 200 else None
        with LOCK:
            LOG.append({
                "scenario": name,
                "request": params,
                "requestError": request_error,
                "status": status,
                "responseError": response_error,
            })
        if response_error:
            self.reply(500, {"x-amzn-ErrorType": "InternalServerException"}, {"message": "fake: " + response_error})
        else:
            self.reply(status, headers, body)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]} botocore {botocore.__version__}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
