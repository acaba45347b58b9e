<?php
// Test only (tests/php_faults.rs): the example callback behind `php -S`, whose
// answer is held back while the file named by the `hold` setting exists: a
// Jeedom that handled a batch but whose answer never reached the daemon.
require_once __DIR__ . '/jeedom_core.php';
ob_start(); // nothing, not even the status line, leaves before the end
register_shutdown_function(function () {
    while (file_exists(config::byKey('hold', 'rocketchat'))) {
        usleep(20000);
    }
    ob_end_flush();
});
require __DIR__ . '/jeeRocketchat.php';
