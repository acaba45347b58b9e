<?php
// What a plugin does with each event of rocketchatd's callback. Here each
// handled event is written as one JSON line to the file named by the
// `handled` setting, so that the tests can see what PHP understood; a
// plugin updates its devices' commands instead.

class rocketchatEvents {
    // The identity of an event that may come twice (`"replay": true` after a
    // crash of the daemon); null for the others, which are never repeated.
    public static function replayKey($event) {
        switch ($event['type']) {
            case 'message':
                return 'message:' . $event['id'];
            case 'ask_answer':
                return 'ask_answer:' . $event['ask_id'];
            case 'ask_close_failed':
                return 'ask_close_failed:' . $event['ask_id'];
            case 'sent':
            case 'send_failed':
                // An ask's `sent` has `"ref": null` and carries its ask_id.
                return $event['type'] . ':' . ($event['ref'] !== null ? 'ref:' . $event['ref'] : 'ask:' . $event['ask_id']);
        }
        return null;
    }

    public static function handle($event) {
        if (!is_array($event) || !isset($event['type'])) {
            return;
        }
        $key = self::replayKey($event);
        if ($key !== null) {
            if (!empty($event['replay']) && cache::exist('rocketchat::handled::' . $key)) {
                self::record(array('skipped' => $key));
                return;
            }
            // Kept for a day: a replay comes within minutes of a crash.
            cache::set('rocketchat::handled::' . $key, 1, 86400);
        }
        self::record(self::understand($event));
    }

    // The fields a plugin uses, per event type.
    private static function understand($e) {
        switch ($e['type']) {
            case 'status':
                return $e['connected']
                    ? array('status' => 'connected', 'server_version' => $e['server_version'], 'bot' => $e['user']['username'])
                    : array('status' => 'disconnected', 'error' => $e['error']);
            case 'rooms':
                // One Jeedom device per room, found by its id.
                $devices = array();
                foreach ($e['rooms'] as $room) {
                    $devices[$room['id']] = $room['kind'] . ' ' . $room['name'];
                }
                return array('rooms' => $devices);
            case 'message':
                // The room's device keeps the last message and its sender;
                // `interaction` says whether Jeedom's interaction engine
                // should answer `query` (a direct message or a mention).
                return array('message' => $e['id'], 'room' => $e['room']['id'], 'from' => $e['user']['username'],
                    'text' => $e['text'], 'interaction' => $e['interaction'], 'query' => $e['query']);
            case 'ask_answer':
                return array('ask_answer' => $e['ask_id'], 'answer' => $e['answer'], 'by' => $e['user']['username']);
            case 'ask_expired':
                return array('ask_expired' => $e['ask_id']);
            case 'sent':
                return array('sent' => $e['ref'], 'ask_id' => isset($e['ask_id']) ? $e['ask_id'] : null,
                    'room' => $e['room']['id'], 'message_id' => $e['message_id']);
            case 'send_failed':
                return array('send_failed' => $e['ref'], 'ask_id' => isset($e['ask_id']) ? $e['ask_id'] : null,
                    'error' => $e['error']);
            case 'ask_close_failed':
                // The question still shows its buttons: a notice was posted, or not.
                return array('ask_close_failed' => $e['ask_id'], 'error' => $e['error'],
                    'notice_id' => $e['notice_id'],
                    'notice_error' => isset($e['notice_error']) ? $e['notice_error'] : null);
            case 'dropped':
                return array('dropped' => $e['count']);
        }
        return array('unknown' => $e['type']); // a newer daemon: ignore, do not fail the batch
    }

    private static function record($what) {
        file_put_contents(config::byKey('handled', 'rocketchat'), json_encode($what) . "\n", FILE_APPEND | LOCK_EX);
    }
}
