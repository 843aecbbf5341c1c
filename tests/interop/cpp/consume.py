"""Consumes TOPIC with the stock RocketMQ C++ push consumer (rocketmq-client-cpp 2.x via
Apache's `rocketmq` wheel) in GROUP with the tag expression EXPRESSION, and prints one JSON
line per message (seq, tags, keys, body, queue), until STOP_AFTER_IDLE_MS pass with no
message after at least one arrived, or TIMEOUT_MS overall. Two instances with the same GROUP
share the queues (clustering). Prints {"ready": true} once started.

env: NAMESRV, TOPIC, GROUP, EXPRESSION (default *), INSTANCE, TIMEOUT_MS (default 60000),
     STOP_AFTER_IDLE_MS (default 5000), RMQ_PY (where the wheel is installed)
"""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.environ.get("RMQ_PY", os.path.join(os.path.dirname(__file__), "..", "py")))
from rocketmq.client import PushConsumer  # noqa: E402


def text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def main():
    timeout_ms = int(os.environ.get("TIMEOUT_MS", "60000"))
    idle_ms = int(os.environ.get("STOP_AFTER_IDLE_MS", "5000"))
    lock = threading.Lock()
    state = {"received": 0, "last": time.time()}

    def on_message(msg):
        line = json.dumps({
            "seq": text(msg.get_property("seq")),
            "tags": text(msg.tags),
            "keys": text(msg.keys),
            "body": text(msg.body),
            "queueId": msg.queue_id,
            "queueOffset": msg.queue_offset,
            "reconsumeTimes": msg.reconsume_times,
        })
        with lock:
            state["received"] += 1
            state["last"] = time.time()
            print(line, flush=True)

    consumer = PushConsumer(os.environ.get("GROUP", "ringmq_cpp_consumer"))
    consumer.set_namesrv_addr(os.environ.get("NAMESRV", "127.0.0.1:9876"))
    consumer.set_instance_name(os.environ.get("INSTANCE", "cpp_%d" % os.getpid()))
    consumer.subscribe(os.environ.get("TOPIC", "InteropTopic"), on_message,
                       os.environ.get("EXPRESSION", "*"))
    consumer.start()
    print(json.dumps({"ready": True}), flush=True)
    started = time.time()
    while True:
        time.sleep(0.2)
        now = time.time()
        with lock:
            idle = state["received"] > 0 and (now - state["last"]) * 1000 > idle_ms
        if idle or (now - started) * 1000 > timeout_ms:
            break
    consumer.shutdown()
    print(json.dumps({"summary": True, "received": state["received"]}), flush=True)


if __name__ == "__main__":
    main()
