#!/usr/bin/env python3
"""Writes the seed corpus of the frame_header fuzz target (run from wire/fuzz/)."""
import json, struct, os

OUT = "corpus/frame_header"

def frame(serialize_type, header, body=b""):
    return struct.pack(">iI", 4 + len(header) + len(body), (serialize_type << 24) | len(header)) + header + body

def binary_header(code, lang, version, opaque, flag, remark, ext):
    out = struct.pack(">HBHii", code, lang, version, opaque, flag)
    r = remark.encode() if remark else b""
    out += struct.pack(">i", len(r)) + r
    e = b""
    for k in sorted(ext):
        kb, vb = k.encode(), ext[k].encode()
        e += struct.pack(">H", len(kb)) + kb + struct.pack(">i", len(vb)) + vb
    return out + struct.pack(">i", len(e)) + e

V2 = {"a": "PG", "b": "TopicTest", "c": "TBW102", "d": "4", "e": "3", "f": "0",
      "g": "1700000000123", "h": "0", "i": "TAGS\x01TagA\x02KEYS\x01k1\x02", "j": "0",
      "k": "false", "m": "false", "n": "broker-a"}
seeds = {
    "json_golden": frame(0, b'{"code":31,"extFields":{"queueId":"7","topic":"TopicA"},"flag":0,"language":"JAVA","opaque":16909060,"remark":"json-request","serializeTypeCurrentRPC":"JSON","version":321}', b"hi"),
    "binary_golden": frame(1, binary_header(31, 0, 323, 0x7fffffff, 2, "binary-request", {"queueId": "8", "topic": "TopicB"}), b"\x00\xff\x52"),
    "send_v2_json_numeric": frame(0, b'{"code":310,"language":"CPP","version":401,"opaque":7,"flag":0,"extFields":{"a":"PG","b":"TopicTest","c":"TBW102","d":4,"e":3,"f":0,"g":1700000000123,"h":0,"i":"TAGS\\u0001TagA\\u0002","j":0,"k":false,"m":false}}', b"x" * 64),
    "send_v2_binary": frame(1, binary_header(310, 0, 474, 9, 0, None, V2), b"y" * 64),
    "pull_json": frame(0, json.dumps({"code": 11, "language": "JAVA", "version": 474, "opaque": 3, "flag": 0, "extFields": {"consumerGroup": "CG", "topic": "T", "queueId": "0", "queueOffset": "0", "maxMsgNums": "32", "sysFlag": "3", "commitOffset": "0", "suspendTimeoutMillis": "15000", "subVersion": "1", "proxyFrowardClientId": "c"}}).encode()),
    "heartbeat": frame(0, b'{"code":34,"language":"JAVA","version":474,"opaque":4,"flag":0}', b'{"clientID":"c@1","consumerDataSet":[{"consumeFromWhere":4,"consumeType":"CONSUME_PASSIVELY","groupName":"CG","messageModel":1,"subscriptionDataSet":[{"codeSet":[2598919],"subString":"TagA","subVersion":"1","tagsSet":["TagA"],"topic":"T"}],"unitMode":false}],"producerDataSet":[{"groupName":"PG"}]}'),
    "topic_stats": frame(0, b'{"code":0,"flag":1,"language":"JAVA","opaque":5,"version":474}', b'{"offsetTable":{{"brokerName":"b","queueId":2,"topic":"t"}:{"lastUpdateTimestamp":0,"maxOffset":3,"minOffset":0}},"topicPutTps":0.0}'),
    "consumer_offsets": frame(0, b'{"code":0,"flag":1,"language":"JAVA","opaque":6,"version":474}', b'{"offsetTable":{"T@CG":{0:12,1:40}}}'),
    "broker_config": frame(1, binary_header(25, 0, 474, 8, 0, None, {}), b"brokerName=b\nlistenPort = 10911\n# c\nk\\=x:v\\u0041\n"),
    "two_frames": frame(0, b'{"code":38,"extFields":{"consumerGroup":"CG"}}') + frame(1, binary_header(35, 12, 1, 1, 0, None, {"clientID": "c@1"})),
}
os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print(len(seeds), "seeds written to", OUT)
