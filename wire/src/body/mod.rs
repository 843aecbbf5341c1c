//! JSON bodies as RocketMQ's fastjson produces and accepts them.
