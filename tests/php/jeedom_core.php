<?php
// Outside Jeedom only: the few Jeedom core calls the examples use, so that
// they run with plain php-cli in the tests. In a plugin, Jeedom's own
// core/php/core.inc.php provides them; nothing here is needed there.
// The settings come from the JSON file named by RCD_PHP_CONFIG.

class config {
    public static function byKey($_key, $_plugin = 'core', $_default = '') {
        static $settings = null;
        if ($settings === null) {
            $settings = json_decode(file_get_contents(getenv('RCD_PHP_CONFIG')), true);
        }
        return isset($settings[$_key]) ? $settings[$_key] : $_default;
    }
}

class jeedom {
    // Jeedom: /tmp/jeedom/<plugin>, a tmpfs.
    public static function getTmpFolder($_plugin) {
        $dir = config::byKey('tmp', $_plugin) . '/' . $_plugin;
        if (!is_dir($dir)) {
            mkdir($dir, 0775, true);
        }
        return $dir;
    }

    public static function getApiKey($_plugin) {
        return config::byKey('apikey', $_plugin);
    }

    // Jeedom compares the key of the request with the plugin's.
    public static function apiAccess($_apikey, $_plugin) {
        return is_string($_apikey) && $_apikey !== '' && hash_equals(self::getApiKey($_plugin), $_apikey);
    }
}

class system {
    // As Jeedom's system::kill() with a pid: SIGTERM, SIGKILL only when the
    // SIGTERM could not be sent.
    public static function kill($_pid) {
        if (posix_kill($_pid, 15)) {
            return true;
        }
        return posix_kill($_pid, 9);
    }
}

class log {
    public static function getPathToLog($_name) {
        return config::byKey('log', 'rocketchat') . '/' . $_name;
    }

    public static function add($_plugin, $_level, $_message) {
        $line = date('[Y-m-d H:i:s]') . '[' . strtoupper($_level) . '] : ' . $_message . "\n";
        file_put_contents(self::getPathToLog($_plugin), $line, FILE_APPEND);
    }
}

// Jeedom's cache (cache::set / cache::byKey), one file per key.
class cache {
    private static function path($_key) {
        return jeedom::getTmpFolder('rocketchat') . '/cache-' . md5($_key);
    }

    public static function set($_key, $_value, $_lifetime = 0) {
        file_put_contents(self::path($_key), json_encode($_value));
    }

    public static function exist($_key) {
        return file_exists(self::path($_key));
    }
}

// Jeedom's init(): a request parameter.
function init($_name, $_default = '') {
    return isset($_GET[$_name]) ? $_GET[$_name] : (isset($_POST[$_name]) ? $_POST[$_name] : $_default);
}
