"""moto's server, with two fidelity fixes the adapter tests rely on.

1. DynamoDB requests are served one at a time.

DynamoDB evaluates a condition and applies the write atomically, item by item and per
transaction. moto's server answers requests on parallel threads and checks conditions in
Python without a lock, so two concurrent conditional writes can both pass: a race real
DynamoDB never loses. Serialising DynamoDB requests restores that guarantee for the
concurrency tests (50 writers on one audit stream). Other services keep running in parallel,
so SQS long polls do not block DynamoDB.

2. SendMessageBatch keeps each entry's MessageSystemAttributes (AWSTraceHeader), as SQS does;
moto 5.2.5 keeps them for SendMessage only and drops them from batch entries.

Usage: the same arguments as `moto_server` (infra/moto.sh passes -H and -p).
"""

import threading

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.sqs.models import SQSBackend

_dynamodb = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _serialised(self, environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        with _dynamodb:
            # moto builds the whole response before returning, so the lock covers the write.
            return _dispatch(self, environ, start_response)
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _serialised

_send_batch = SQSBackend.send_message_batch


def _send_batch_with_system_attributes(self, queue_name, entries):
    messages, failed = _send_batch(self, queue_name, entries)
    by_id = {entry["Id"]: entry for entry in entries.values()}
    for message in messages:
        system = by_id.get(getattr(message, "user_id", None), {}).get("MessageSystemAttributes")
        if system:
            message.system_attributes = system
    return messages, failed


SQSBackend.send_message_batch = _send_batch_with_system_attributes

if __name__ == "__main__":
    server.main()
