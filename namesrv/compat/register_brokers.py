# Registers two brokers (JSON headers, as a Java broker sends them) with a NameServer and
# keeps their connections open for ARGV[2] seconds. Usage: register_brokers.py HOST:PORT SECONDS
import json, socket, struct, sys, time
addr = sys.argv[1]; host, port = addr.split(':')
def frame(code, ext, body=b'', opaque=1):
    header = json.dumps({"code": code, "extFields": ext, "flag": 0, "language": "JAVA", "opaque": opaque,
                         "serializeTypeCurrentRPC": "JSON", "version": 400}).encode()
    return struct.pack('>II', 4 + len(header) + len(body), len(header)) + header + body
def read(sock):
    n = struct.unpack('>I', sock.recv(4, socket.MSG_WAITALL))[0]
    data = sock.recv(n, socket.MSG_WAITALL)
    hl = struct.unpack('>I', data[:4])[0] & 0xFFFFFF
    return json.loads(data[4:4+hl]), data[4+hl:]
socks = []
for i, (name, baddr) in enumerate([("broker-a", "127.0.0.1:10911"), ("broker-b", "127.0.0.1:20911")]):
    body = json.dumps({"topicConfigSerializeWrapper": {"dataVersion": {"counter": 1, "timestamp": 1},
            "topicConfigTable": {"TopicTest": {"topicName": "TopicTest", "readQueueNums": 4, "writeQueueNums": 4, "perm": 6}}},
            "filterServerList": []}).encode()
    s = socket.create_connection((host, int(port)))
    s.sendall(frame(103, {"brokerName": name, "brokerAddr": baddr, "clusterName": "DefaultCluster",
                          "haServerAddr": baddr, "brokerId": "0", "compressed": "false"}, body, opaque=i+1))
    print(read(s)[0], flush=True)
    socks.append(s)
time.sleep(float(sys.argv[2]))
