<!DOCTYPE html>
<html>
<head><meta charset="utf-8"></head>
<body><p>{{message}}</p></body>
</html>
