"""Produces COUNT messages with tags, keys and a user property through the stock RocketMQ C++
client (rocketmq-client-cpp 2.x, driven from Python by Apache's `rocketmq` wheel that bundles
librocketmq.so): the first half one synchronous send at a time, the second half in batches of
BATCH (the C++ client sends a batch as SEND_MESSAGE with `batch=true`); prints one JSON line
per message, then a summary line. Exit status 0 only if every send returned SEND_OK.

env: NAMESRV (host:port), TOPIC, COUNT (default 300), BATCH (default 10; 0: no batches),
     GROUP (default ringmq_cpp_producer),
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
    batch_size = int(os.environ.get("BATCH", "10"))
    failed = 0

    def message(i):
        msg = Message(topic)
        msg.set_tags("Tag%d" % (i % 3))
        msg.set_keys("key-%d" % i)
        msg.set_property("seq", str(i))
        msg.set_body("hello ringmq %d" % i)
        return msg

    def report(seqs, send):
        nonlocal failed
        try:
            result = send()
        except Exception as error:  # the wheel raises its own exception types
            failed += len(seqs)
            print("send %s failed: %s" % (seqs, error), file=sys.stderr, flush=True)
            return
        ok = result.status == SendStatus.OK
        if not ok:
            failed += len(seqs)
        for seq in seqs:
            print(json.dumps({"seq": seq, "status": "SEND_OK" if ok else str(result.status),
                              "batch": len(seqs) > 1, "queueOffset": result.offset}),
                  flush=True)

    single = count // 2 if batch_size > 1 else count
    for i in range(single):
        report([i], lambda: producer.send_sync(message(i)))
    for start in range(single, count, max(batch_size, 1)):
        seqs = list(range(start, min(start + batch_size, count)))
        report(seqs, lambda: producer.send_batch([message(i) for i in seqs]))
    producer.shutdown()
    print(json.dumps({"summary": True, "sent": count - failed, "failed": failed}), flush=True)
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
