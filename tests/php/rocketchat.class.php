<?php
// The part of a Jeedom plugin that drives rocketchatd: start, stop, state,
// and the requests to its command socket. Run by the tests (tests/php.rs)
// against the real daemon; in a plugin these are methods of the eqLogic class.

class rocketchat {
    const BINARY_NAME = 'rocketchatd';

    private static function pidFile() {
        return jeedom::getTmpFolder(__CLASS__) . '/deamon.pid';
    }

    // A service started by systemd owns the socket port and the state: the
    // plugin must not start a second daemon (it would fail on the port).
    public static function systemdRunsIt() {
        exec('systemctl is-active --quiet rocketchatd.service 2>/dev/null', $out, $code);
        return $code === 0;
    }

    public static function deamon_info() {
        $return = array('log' => __CLASS__ . '_daemon', 'state' => 'nok', 'launchable' => 'ok');
        $pid_file = self::pidFile();
        if (file_exists($pid_file)) {
            // Jeedom's plugins test the pid with posix_getsid(), which answers 0
            // (false) for a live process whose session leader is outside the
            // PID namespace, as in a container: the plugin would then delete a
            // running daemon's pid file. A signal 0 only asks "does it exist?".
            $pid = intval(trim(file_get_contents($pid_file)));
            if ($pid > 0 && @posix_kill($pid, 0)) {
                $return['state'] = 'ok';
            } else {
                @unlink($pid_file); // left by a daemon that was killed
            }
        }
        if (config::byKey('url', __CLASS__) == '' || config::byKey('user', __CLASS__) == '') {
            $return['launchable'] = 'nok';
            $return['launchable_message'] = 'Rocket.Chat URL or bot user missing';
        } elseif ($return['state'] != 'ok' && self::systemdRunsIt()) {
            $return['launchable'] = 'nok';
            $return['launchable_message'] = 'rocketchatd runs as a systemd service: disable it to let Jeedom run the daemon';
        }
        return $return;
    }

    public static function deamon_start() {
        self::deamon_stop();
        $deamon_info = self::deamon_info();
        if ($deamon_info['launchable'] != 'ok') {
            throw new Exception($deamon_info['launchable_message']);
        }
        // The API key goes in a file only the daemon's user reads, not on the
        // command line that `ps` shows to every local user.
        $key_file = jeedom::getTmpFolder(__CLASS__) . '/apikey';
        $umask = umask(077);
        file_put_contents($key_file, jeedom::getApiKey(__CLASS__));
        umask($umask);
        $cmd = escapeshellarg(config::byKey('binary', __CLASS__, '/usr/bin/rocketchatd'));
        foreach (array(
            'loglevel' => config::byKey('loglevel', __CLASS__, 'info'),
            'socketport' => config::byKey('socketport', __CLASS__, '55071'),
            'callback' => config::byKey('callback', __CLASS__),
            'apikey-file' => $key_file,
            'pid' => self::pidFile(),
            'state' => config::byKey('state', __CLASS__), // in the plugin's data folder, not the tmpfs
            'url' => config::byKey('url', __CLASS__),
            'user' => config::byKey('user', __CLASS__),
            'password-file' => config::byKey('password_file', __CLASS__),
        ) as $option => $value) {
            $cmd .= ' --' . $option . ' ' . escapeshellarg($value);
        }
        log::add(__CLASS__, 'info', 'Starting the daemon');
        exec($cmd . ' >> ' . log::getPathToLog(__CLASS__ . '_daemon') . ' 2>&1 &');
        // The daemon writes its pid file within milliseconds, even when
        // Rocket.Chat is out of reach; Jeedom gives a daemon 10 s or so.
        for ($i = 0; $i < 50; $i++) {
            if (self::deamon_info()['state'] == 'ok') {
                return true;
            }
            usleep(200000);
        }
        log::add(__CLASS__, 'error', 'The daemon did not start: see the rocketchat_daemon log');
        return false;
    }

    // SIGTERM by pid, as system::kill() sends it: the daemon writes its state,
    // removes its pid file and exits within a second. No kill by name: a
    // `kill -9` would skip the clean stop, and could hit a systemd instance.
    public static function deamon_stop() {
        $pid_file = self::pidFile();
        if (!file_exists($pid_file)) {
            return;
        }
        $pid = intval(trim(file_get_contents($pid_file)));
        if ($pid > 0) {
            system::kill($pid);
            // The daemon removes its pid file as it exits.
            for ($i = 0; $i < 50 && file_exists($pid_file); $i++) {
                usleep(100000);
            }
            if (file_exists($pid_file)) {
                posix_kill($pid, 9); // stuck for 5 s: the state on disk is still whole
            }
        }
        @unlink($pid_file);
    }

    // One request per connection, written and closed, the reply never read:
    // the way Jeedom's plugins talk to their daemons. The daemon answers
    // `{"ok":true}` only once a `send` or an `ask` is on disk; what happened
    // next arrives at the callback (`sent`, `send_failed`, `ask_answer`...).
    public static function sendToDaemon($params) {
        $params['apikey'] = jeedom::getApiKey(__CLASS__);
        $payLoad = json_encode($params);
        $socket = socket_create(AF_INET, SOCK_STREAM, 0);
        if ($socket === false || !@socket_connect($socket, '127.0.0.1', intval(config::byKey('socketport', __CLASS__, '55071')))) {
            throw new Exception('rocketchatd is not running (command socket closed)');
        }
        socket_write($socket, $payLoad, strlen($payLoad));
        socket_close($socket);
    }

    // The Rocket.Chat "send" command of a device; `ref` comes back in its
    // `sent` or `send_failed` event.
    public static function send($room, $message, $ref, $options = '') {
        self::sendToDaemon(array('action' => 'send', 'room' => $room, 'message' => $message,
            'options' => $options, 'ref' => $ref));
    }

    // Jeedom's "ask" action: the answer comes back as an `ask_answer` event
    // with this `ask_id`, or `ask_expired` after `timeout` seconds.
    public static function ask($room, $question, $answers, $ask_id, $timeout) {
        self::sendToDaemon(array('action' => 'ask', 'room' => $room, 'question' => $question,
            'answers' => $answers, 'ask_id' => $ask_id, 'timeout' => $timeout));
    }
}
