<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Fortunes</title></head>
<body>
<table>
<tr><th>id</th><th>message</th></tr>
% for fortune_id, message in fortunes:
<tr><td>{{fortune_id}}</td><td>{{message}}</td></tr>
% end
</table>
</body>
</html>
