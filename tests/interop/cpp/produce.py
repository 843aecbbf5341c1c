"""Produces COUNT messages with tags, keys and a user property through the stock RocketMQ C++
client (rocketmq-client-cpp 2.x, driven from Python by Apache's `rocketmq` wheel that bundles
librocketmq.so), one synchronous send at a time, and prints one JSON line per send result, then
a summary line. Exit status 0 only if every send returned SEND_OK.

env: NAMESRV (host:port), TOPIC, COUNT (default 300), GROUP (default ringmq_cpp_producer),
     RMQ_PY (directory the wheel is installed in; default ../py next to this file)
"""
import json
import os
import sys

sys.path.insert(0, os.environ.get("RMQ_PY", os.path.join(os.path.dirname(__file__), "..", "py")))
from rocketmq.client import Message, Producer, SendStatus  # noqa: E402


def main():
    namesrv = os.environ.get("NAMESRV", "127.0.0.1:9876")
    topic = os.environ.get("TOPIC", "InteropTopic")
    count = int(os.environ.get("COUNT", "300"))
    producer = Producer(os.environ.get("GROUP", "ringmq_cpp_producer"))
    producer.set_namesrv_addr(namesrv)
    producer.start()
    failed = 0
    for i in range(count):
        msg = Message(topic)
        msg.set_tags("Tag%d" % (i % 3))
        msg.set_keys("key-%d" % i)
        msg.set_property("seq", str(i))
        msg.set_body("hello ringmq %d" % i)
        try:
            result = producer.send_sync(msg)
        except Exception as error:  # the wheel raises its own exception types
            failed += 1
            print("send %d failed: %s" % (i, error), file=sys.stderr, flush=True)
            continue
        ok = result.status == SendStatus.OK
        if not ok:
            failed += 1
        print(json.dumps({"seq": i, "status": "SEND_OK" if ok else str(result.status),
                          "msgId": result.msg_id, "queueOffset": result.offset}), flush=True)
    producer.shutdown()
    print(json.dumps({"summary": True, "sent": count - failed, "failed": failed}), flush=True)
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
