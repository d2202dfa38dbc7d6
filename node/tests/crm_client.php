<?php
// A CRM's side of callfleet's XML-RPC API in PHP, with the xmlrpc extension (Debian:
// php-xmlrpc) as it comes: a PHP integer such as an extension kept as a number goes out as
// <int>, a PHP string as <string>.
//
// Usage: php crm_client.php URL EXT DEVICE QUEUE
//   EXT, DEVICE and QUEUE are digits and are sent as integers. URL is the node's base;
//   CALLFLEET_TOKEN, when set, is sent as "Authorization: Bearer". Prints one JSON object:
//   step -> result, or {"fault", "message"}; "xml.login" is the request body for agent.login.

if ($argc !== 5) {
    fwrite(STDERR, "usage: php crm_client.php URL EXT DEVICE QUEUE\n");
    exit(2);
}
[, $base, $ext, $device, $queue] = $argv;
$ext = (int) $ext;
$device = (int) $device;
$queue = (int) $queue;

function call(string $base, string $method, array $params)
{
    $headers = "Content-Type: text/xml\r\n";
    $token = getenv('CALLFLEET_TOKEN');
    if ($token !== false && $token !== '') {
        $headers .= "Authorization: Bearer $token\r\n";
    }
    $context = stream_context_create(['http' => [
        'method' => 'POST',
        'header' => $headers,
        'content' => xmlrpc_encode_request($method, $params),
        'timeout' => 10,
        'ignore_errors' => true,
    ]]);
    $body = file_get_contents("$base/RPC2", false, $context);
    if ($body === false) {
        fwrite(STDERR, "$method: no answer\n");
        exit(1);
    }
    $result = xmlrpc_decode($body);
    if (is_array($result) && xmlrpc_is_fault($result)) {
        return ['fault' => $result['faultCode'], 'message' => $result['faultString']];
    }
    return $result;
}

$r = [];
$r['xml.login'] = xmlrpc_encode_request('agent.login', [$ext, $device]);
$r['login'] = call($base, 'agent.login', [$ext, $device]);
$r['status'] = call($base, 'agent.status', [$ext]);
$r['setTier'] = call($base, 'agent.setTier', [$ext, $queue, 5]);
$r['vip'] = call($base, 'vip.add', ['+4930888', $queue]);
$r['stats'] = call($base, 'queue.stats', [$queue]);
$r['logout'] = call($base, 'agent.logout', [$ext]);
$r['f.unknown'] = call($base, 'agent.status', [9999]);
$r['f.boolean'] = call($base, 'agent.status', [true]);
echo json_encode($r), "\n";
