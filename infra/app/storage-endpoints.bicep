// Private endpoints (one per storage service) for one account, registered in the VNet's DNS zones.
param storageAccountName string
@description('Storage services to expose privately: blob, queue, table.')
param groupIds array
param subnetId string
@description('Private DNS zone id per service name, from network.bicep.')
param privateDnsZoneIds object
param location string
param tags object = {}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

// One at a time: parallel private endpoints on one account can collide.
@batchSize(1)
resource endpoints 'Microsoft.Network/privateEndpoints@2024-05-01' = [for groupId in groupIds: {
  name: 'pe-${storageAccountName}-${groupId}'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: '${storageAccountName}-${groupId}'
        properties: {
          privateLinkServiceId: account.id
          groupIds: [
            groupId
          ]
        }
      }
    ]
  }
}]

resource zoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = [for (groupId, i) in groupIds: {
  parent: endpoints[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: groupId
        properties: {
          privateDnsZoneId: privateDnsZoneIds[groupId]
        }
      }
    ]
  }
}]
