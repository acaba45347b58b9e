<?php
// Command line over rocketchat.class.php, for the tests and for trying it by hand:
//   RCD_PHP_CONFIG=settings.json php plugin.php start|stop|info
//   RCD_PHP_CONFIG=settings.json php plugin.php send ROOM MESSAGE REF
//   RCD_PHP_CONFIG=settings.json php plugin.php ask ROOM QUESTION 'Yes;No' ASK_ID TIMEOUT
require_once __DIR__ . '/jeedom_core.php';
require_once __DIR__ . '/rocketchat.class.php';

$args = array_slice($argv, 1);
try {
    switch (isset($args[0]) ? $args[0] : '') {
        case 'start':
            exit(rocketchat::deamon_start() ? 0 : 1);
        case 'stop':
            rocketchat::deamon_stop();
            exit(0);
        case 'info':
            echo json_encode(rocketchat::deamon_info()) . "\n";
            exit(0);
        case 'send':
            rocketchat::send($args[1], $args[2], $args[3]);
            exit(0);
        case 'ask':
            rocketchat::ask($args[1], $args[2], $args[3], $args[4], intval($args[5]));
            exit(0);
    }
} catch (Exception $e) {
    fwrite(STDERR, $e->getMessage() . "\n");
    exit(1);
}
fwrite(STDERR, "usage: php plugin.php start|stop|info|send ROOM MESSAGE REF|ask ROOM QUESTION ANSWERS ASK_ID TIMEOUT\n");
exit(2);
