<?php
// The Jeedom callback of rocketchatd (plugins/rocketchat/core/php/jeeRocketchat.php).
// In Jeedom the first line is:
//   require_once __DIR__ . '/../../../../core/php/core.inc.php';
require_once __DIR__ . '/jeedom_core.php';
require_once __DIR__ . '/events.php';

// Every request carries the API key; a wrong one is refused and the daemon
// says so in its log.
if (!jeedom::apiAccess(init('apikey'), 'rocketchat')) {
    http_response_code(403);
    echo 'unauthorized';
    die();
}
// The daemon's start-up test: GET ?test=1&apikey=..., answered "OK".
if (init('test') != '') {
    echo 'OK';
    die();
}
$body = json_decode(file_get_contents('php://input'), true);
if (!is_array($body) || !isset($body['events']) || !is_array($body['events'])) {
    http_response_code(400);
    die();
}
foreach ($body['events'] as $event) {
    rocketchatEvents::handle($event);
}
// Any 2xx acknowledges the whole batch; anything else (or a PHP error,
// which is a 500) makes the daemon send the same batch again.
echo 'OK';
